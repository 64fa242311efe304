//! The process's role and fencing epoch, as health, metrics and the dashboard report them.
//! Role is `primary` for `sable run` (and a promoted standby); epoch stays 0 until fencing
//! (etcd) sets it. Whoever changes role or epoch calls [`RoleState::set_role`] /
//! [`RoleState::set_epoch`] (any thread; the admin thread reads).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// What this process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Takes orders.
    Primary,
    /// Follows a primary.
    Standby,
}

impl Role {
    /// The label (`role="primary"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        }
    }
}

/// Role and epoch, readable from any thread.
#[derive(Default)]
pub struct RoleState {
    standby: AtomicU8,
    epoch: AtomicU64,
}

impl RoleState {
    /// Sets the role.
    pub fn set_role(&self, role: Role) {
        self.standby.store(u8::from(role == Role::Standby), Ordering::Release);
    }

    /// The role.
    pub fn role(&self) -> Role {
        if self.standby.load(Ordering::Acquire) == 1 { Role::Standby } else { Role::Primary }
    }

    /// Sets the fencing epoch.
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Release);
    }

    /// The fencing epoch (0 until fencing exists).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}
