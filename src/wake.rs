//! Wake-up timers other than the generic timer: deadlines in generic-counter counts turned into
//! counts of a slower board timer (the i.MX GPT's 32 kHz).

/// Counts of a timer at `timer_hz` to wait, from generic-counter value `now` (at `cnt_hz`), so
/// that the timer fires at or after `deadline` and never before it: rounded up, plus one for
/// the timer's current count, which is already partly gone. At least 1; at most 2^31 (the
/// timer's compare is modular in 32 bits), about 18 hours at 32 kHz.
pub fn ticks_until(now: u64, deadline: u64, cnt_hz: u64, timer_hz: u64) -> u32 {
    let delta = u128::from(deadline.saturating_sub(now));
    let hz = u128::from(cnt_hz.max(1));
    let ticks = (delta * u128::from(timer_hz)).div_ceil(hz) + 1;
    ticks.min(1 << 31) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const CNT_HZ: u64 = 8_000_000;
    const GPT_HZ: u64 = 32_768;

    #[test]
    fn never_early_and_at_most_two_ticks_late() {
        for delta in [
            0u64,
            1,
            243,
            244,
            245,
            8_000,
            80_000,
            8_000_000,
            123_456_789,
        ] {
            let t = ticks_until(1_000, 1_000 + delta, CNT_HZ, GPT_HZ);
            // The timer fires after (t - 1, t] of its periods; that must cover delta.
            let earliest = (u128::from(t) - 1) * u128::from(CNT_HZ) / u128::from(GPT_HZ);
            assert!(
                earliest >= u128::from(delta),
                "delta {delta}: {t} ticks fire early"
            );
            assert!(
                u128::from(t) <= u128::from(delta) * u128::from(GPT_HZ) / u128::from(CNT_HZ) + 2
            );
        }
    }

    #[test]
    fn passed_deadlines_fire_at_once_and_far_ones_are_capped() {
        assert_eq!(ticks_until(5_000, 4_000, CNT_HZ, GPT_HZ), 1);
        assert_eq!(ticks_until(0, u64::MAX, CNT_HZ, GPT_HZ), 1 << 31);
        assert_eq!(
            ticks_until(0, 1000, 0, GPT_HZ),
            1000 * 32_768 + 1,
            "a zero rate counts as 1 Hz"
        );
    }
}
