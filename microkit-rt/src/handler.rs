//! The Microkit event loop (MCS): receive, dispatch by badge, reply.
use core::fmt;

use crate::cap::slot;
use crate::invocation::irq_ack;
use crate::syscall::{nb_send_recv, recv, reply_recv};
use crate::{println, Cap, Channel, ChannelSet, Child, MessageInfo};

const BADGE_FAULT: u64 = 1 << 62;
const BADGE_PPC: u64 = 1 << 63;
const CHANNEL_MASK: u64 = 0x3f;

/// Reply label of a protected call whose handler failed.
pub const PPC_ERROR_LABEL: u64 = 0xfff;

/// A PD's entry points (as in rust-sel4's `sel4_microkit::Handler`).
pub trait Handler {
    type Error: fmt::Display;

    /// Notifications arrived on `channels`.
    fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
        let _ = channels;
        Ok(())
    }

    /// A protected procedure call on `channel`; the returned info is the reply. By default a PD
    /// serves none: the caller gets [`PPC_ERROR_LABEL`].
    fn protected(
        &mut self,
        channel: Channel,
        msg_info: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        let _ = msg_info;
        println!(
            "{}: no protected procedures (call on channel {})",
            crate::pd_name(),
            channel.index()
        );
        Ok(MessageInfo::new(PPC_ERROR_LABEL, 0))
    }

    /// A fault of `child` (a child PD or vCPU); `Some(info)` replies (label 0 resumes it),
    /// `None` leaves it blocked: the handler must then have suspended it. By default a PD has no
    /// children whose faults it handles.
    fn fault(
        &mut self,
        child: Child,
        msg_info: MessageInfo,
    ) -> Result<Option<MessageInfo>, Self::Error> {
        println!(
            "{}: unexpected fault (label {}) from child {}",
            crate::pd_name(),
            msg_info.label(),
            child.index()
        );
        Ok(None)
    }
}

pub(crate) fn event_loop<H: Handler>(mut h: H, passive: bool, irqs: u64) -> ! {
    let input = Cap(slot::INPUT);
    let reply_cap = Cap(slot::REPLY);
    // Interrupts may have fired before the PD was ready (seL4 issue 1536): ack them all once.
    for ch in ChannelSet(irqs).iter() {
        let _ = irq_ack(ch);
    }
    let mut reply: Option<MessageInfo> = None;
    // A passive PD tells the monitor it is ready so its scheduling context can be taken away.
    let (mut badge, mut info) = if passive {
        nb_send_recv(
            Cap(slot::MONITOR_EP),
            MessageInfo::new(0, 0),
            input,
            reply_cap,
        )
    } else {
        recv(input, reply_cap)
    };
    loop {
        if badge & BADGE_FAULT != 0 {
            reply = match h.fault(Child::from_badge(badge), info) {
                Ok(r) => r,
                Err(e) => {
                    println!("{}: fault handler: {}", crate::pd_name(), e);
                    None
                }
            };
        } else if badge & BADGE_PPC != 0 {
            let result = match Channel::from_badge_bits(badge & CHANNEL_MASK) {
                Some(ch) => h.protected(ch, info),
                None => Ok(MessageInfo::new(PPC_ERROR_LABEL, 0)),
            };
            reply = Some(result.unwrap_or_else(|e| {
                println!("{}: protected: {}", crate::pd_name(), e);
                MessageInfo::new(PPC_ERROR_LABEL, 0)
            }));
        } else if let Err(e) = h.notified(ChannelSet(badge)) {
            println!("{}: notified: {}", crate::pd_name(), e);
        }
        (badge, info) = match reply.take() {
            Some(r) => reply_recv(input, r, reply_cap),
            None => recv(input, reply_cap),
        };
    }
}
