//! Pod addresses and the pods' claims on an address, kept inline when there is one (nearly
//! always): no allocation per pod or per address for the common case.
use std::net::IpAddr;

/// A pod's hold on an address, with its lifetime (ns).
#[derive(Debug, Clone, Copy)]
pub struct IpClaim {
    pub pod: u32,
    pub from: i64,
    pub to: i64,
    pub running: bool,
}

/// The addresses a pod claims.
#[derive(Debug, Default)]
pub enum Addrs {
    #[default]
    None,
    One(IpAddr),
    Many(Box<[IpAddr]>),
}

impl Addrs {
    pub fn new(ips: Vec<IpAddr>) -> Addrs {
        match ips.as_slice() {
            [] => Addrs::None,
            [one] => Addrs::One(*one),
            _ => Addrs::Many(ips.into_boxed_slice()),
        }
    }

    pub fn as_slice(&self) -> &[IpAddr] {
        match self {
            Addrs::None => &[],
            Addrs::One(ip) => std::slice::from_ref(ip),
            Addrs::Many(ips) => ips,
        }
    }
}

/// The claims on one address.
#[derive(Debug)]
pub enum Claims {
    One(IpClaim),
    Many(Vec<IpClaim>),
}

impl Claims {
    pub fn as_slice(&self) -> &[IpClaim] {
        match self {
            Claims::One(c) => std::slice::from_ref(c),
            Claims::Many(v) => v,
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [IpClaim] {
        match self {
            Claims::One(c) => std::slice::from_mut(c),
            Claims::Many(v) => v,
        }
    }

    pub fn push(&mut self, c: IpClaim) {
        match self {
            Claims::One(first) => *self = Claims::Many(vec![*first, c]),
            Claims::Many(v) => v.push(c),
        }
    }

    /// Drops the claims of pod `id`; whether none are left.
    pub fn remove(&mut self, id: u32) -> bool {
        match self {
            Claims::One(c) => c.pod == id,
            Claims::Many(v) => {
                v.retain(|c| c.pod != id);
                if let [only] = v.as_slice() {
                    *self = Claims::One(*only);
                    return false;
                }
                v.is_empty()
            }
        }
    }
}
