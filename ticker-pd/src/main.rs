//! The ticker: once per MCS period it preempts whatever runs on its core, stamps the physical
//! counter into the shared page and signals the VMM (see `lazyfp::ticker`).
#![no_std]
#![no_main]

use lazyfp::sdf::ticker as sdf_self;
use lazyfp::ticker::TickerPage;
use microkit_rt::{memory, notify, Channel};

const VMM: Channel = Channel::new(sdf_self::channel::VMM);

struct Ticker;

/// On only in builds that measure notification latency (`LAZYFP_TICKER=1`): a sporadic
/// scheduling context in seL4's release queue makes every kernel entry a little dearer, which
/// would show in the exit benchmarks.
const ENABLED: bool = match option_env!("LAZYFP_TICKER") {
    Some(v) => matches!(v.as_bytes(), b"1"),
    None => false,
};

/// Never returns when enabled: stamp, signal, give up the budget until the next period. When
/// disabled it waits in its event loop for nothing.
fn init() -> Ticker {
    if !ENABLED {
        return Ticker;
    }
    // SAFETY: system.xml maps the ticker page read-write here (build.rs checked the map); it
    // holds only atomics, read by the VMM.
    let page = unsafe { memory::shared::<TickerPage>(sdf_self::map::TICKER_PAGE.vaddr) };
    loop {
        page.stamp(microkit_rt::counter().0);
        notify(VMM);
        microkit_rt::yield_budget();
    }
}

impl microkit_rt::Handler for Ticker {
    type Error = core::convert::Infallible;
}

microkit_rt::protection_domain!(init);
