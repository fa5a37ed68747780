//! fp-service: tracks per core whose FP state is live (the shared table the VMM publishes to)
//! and serves `neon_begin` / `neon_end` to NEON users, asking the VMM for a save-back first
//! when a vCPU's state is live on the caller's core.
#![no_std]
#![no_main]

use lazyfp::sdf::{fp_service as sdf_self, NEON_WORKERS, NUM_CORES};
use lazyfp::{FpService, FpTable, SavebackOp};
use microkit_rt::{get_mr, memory, ppcall, println, set_mr, Channel, MessageInfo};

const VMM: Channel = Channel::new(sdf_self::channel::VMM);

struct Service {
    svc: FpService,
    table: &'static FpTable,
}

fn init() -> Service {
    // SAFETY: system.xml maps the FP table region read-write here (build.rs checked the map);
    // it holds only atomics, shared with the VMM.
    let table = unsafe { memory::shared::<FpTable>(sdf_self::map::FP_TABLE.vaddr) };
    if let Err(e) = table.attach(NUM_CORES as u64) {
        println!("fp_service: {e}");
    }
    // Every NEON worker, by the channel it calls on and the core it runs on.
    let mut clients = [(0u8, 0u8); lazyfp::MAX_CORES];
    for (c, w) in clients.iter_mut().zip(NEON_WORKERS) {
        *c = (w.fp_service_channel, w.cpu);
    }
    let n = NEON_WORKERS.len().min(clients.len());
    Service {
        svc: FpService::new(NUM_CORES as u64, &clients[..n]),
        table,
    }
}

/// Asks the VMM to save `vcpu`'s state back; Ok(saved) or the VMM's error code.
fn request_saveback(vcpu: u8, core: u64) -> Result<bool, u64> {
    let (label, mrs, len) = SavebackOp::Saveback {
        vcpu: vcpu as u64,
        core,
    }
    .encode();
    for (i, v) in mrs.iter().enumerate() {
        set_mr(i, *v);
    }
    let reply = ppcall(VMM, MessageInfo::new(label, len));
    match reply.label() {
        0 => Ok(get_mr(0) == 1),
        code => Err(code),
    }
}

impl microkit_rt::Handler for Service {
    type Error = core::convert::Infallible;

    fn protected(&mut self, ch: Channel, info: MessageInfo) -> Result<MessageInfo, Self::Error> {
        let reply = self.svc.handle(
            self.table,
            ch.index(),
            info.label(),
            info.length(),
            get_mr,
            request_saveback,
        );
        for (i, v) in reply.mrs[..reply.length].iter().enumerate() {
            set_mr(i, *v);
        }
        Ok(MessageInfo::new(reply.label, reply.length))
    }
}

microkit_rt::protection_domain!(init);
