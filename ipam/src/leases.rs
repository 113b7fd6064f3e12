//! Compact lease storage: a slab of 24-byte slots, owner names packed in one text arena, and
//! three hash indexes (owner, address, MAC) that hold 4-byte slot ids instead of copies of their
//! keys.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use crate::addr::Family;

const HAS_V4: u64 = 1 << 63;
const HAS_V6: u64 = 1 << 62;
const LIVE: u64 = 1 << 61;
/// The MAC is in the MAC index (MACs the generator issued are found by a scan instead).
const MAC_INDEXED: u64 = 1 << 60;
/// The owner name's length sits in bits 48..60.
const LEN_SHIFT: u32 = 48;
/// Longest owner name, in bytes.
pub(crate) const MAX_OWNER_LEN: usize = (1 << 12) - 1;
const MAC_MASK: u64 = (1 << 48) - 1;
/// Top bit of an address-index entry: the entry refers to the slot's IPv6 address.
const V6_TAG: u32 = 1 << 31;

/// One lease (or a free slot, without the LIVE flag).
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// MAC in bits 0..48, the owner name's length in bits 48..60, flags on top.
    mac_flags: u64,
    /// The owner name starts at `arena[owner_off]`.
    owner_off: u32,
    /// 32 bits of the owner name's hash: rehashing and probing never touch the arena.
    owner_hash: u32,
    subnet: u32,
    v4: u32,
}

impl Slot {
    fn owner_len(&self) -> usize {
        ((self.mac_flags >> LEN_SHIFT) as usize) & MAX_OWNER_LEN
    }
}

/// The table hash of an owner, from the 32 bits kept in its slot.
fn expand(h32: u32) -> u64 {
    u64::from(h32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Owner names, back to back. Removed names leave garbage that is squeezed out once it
/// outweighs the live text.
#[derive(Clone, Debug, Default)]
struct Arena {
    text: String,
    garbage: usize,
}

impl Arena {
    fn get(&self, s: &Slot) -> &str {
        let start = s.owner_off as usize;
        &self.text[start..start + s.owner_len()]
    }
}

/// Owner names are limited so that every offset into the arena fits in 32 bits.
pub(crate) const MAX_ARENA: usize = u32::MAX as usize;

/// A lease as stored, with borrowed owner.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeaseRef<'a> {
    pub(crate) owner: &'a str,
    pub(crate) subnet: u32,
    pub(crate) v4: Option<u128>,
    pub(crate) v6: Option<u128>,
    pub(crate) mac: u64,
}

impl LeaseRef<'_> {
    pub(crate) fn addr(&self, family: Family) -> Option<u128> {
        match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }
}

/// An owner name with its hash, computed once per call so that the lookup and the insert of
/// one allocation hash the name only once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OwnerKey<'a> {
    pub(crate) name: &'a str,
    h32: u32,
}

/// All live leases.
#[derive(Clone, Debug)]
pub(crate) struct Leases {
    slots: Vec<Slot>,
    arena: Arena,
    /// IPv6 address per slot, grown only once an IPv6 lease exists.
    v6: Vec<u128>,
    free: Vec<u32>,
    by_owner: HashTable<u32>,
    by_addr: HashTable<u32>,
    by_mac: HashTable<u32>,
    hasher: FixedState,
    len: usize,
}

impl Leases {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            slots: Vec::new(),
            arena: Arena::default(),
            v6: Vec::new(),
            free: Vec::new(),
            by_owner: HashTable::new(),
            by_addr: HashTable::new(),
            by_mac: HashTable::new(),
            hasher: FixedState::with_seed(seed),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Reserves room for `additional` more leases.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let hasher = &self.hasher;
        let slots = &self.slots;
        self.by_mac.reserve(additional, |&i| {
            hasher.hash_one(slots[i as usize].mac_flags & MAC_MASK)
        });
        self.make_room(additional, additional.saturating_mul(2));
        self.slots
            .reserve(additional.saturating_sub(self.free.len()));
    }

    /// Makes room for `owners` more entries in the owner index and `addrs` more in the address
    /// index. A table that is full is rebuilt at twice its live size by reading the slots in
    /// order: hashbrown's own growth would visit the entries in table order and read each
    /// entry's slot at random to rehash it, one cache miss per lease.
    fn make_room(&mut self, owners: usize, addrs: usize) {
        let fits = |t: &HashTable<u32>, n: usize| t.len().saturating_add(n) <= t.capacity();
        if !fits(&self.by_owner, owners) {
            let mut table = HashTable::with_capacity(grown(self.by_owner.len(), owners));
            for (id, s) in self.slots.iter().enumerate() {
                if s.mac_flags & LIVE != 0 {
                    table.insert_unique(expand(s.owner_hash), id as u32, |_| unreachable());
                }
            }
            self.by_owner = table;
        }
        if !fits(&self.by_addr, addrs) {
            let mut table = HashTable::with_capacity(grown(self.by_addr.len(), addrs));
            for (id, s) in self.slots.iter().enumerate() {
                let id = id as u32;
                if s.mac_flags & (LIVE | HAS_V4) == LIVE | HAS_V4 {
                    let h = addr_key_hash(&self.hasher, s.subnet, u128::from(s.v4));
                    table.insert_unique(h, id, |_| unreachable());
                }
                if s.mac_flags & (LIVE | HAS_V6) == LIVE | HAS_V6 {
                    let h = addr_key_hash(&self.hasher, s.subnet, self.v6[id as usize]);
                    table.insert_unique(h, id | V6_TAG, |_| unreachable());
                }
            }
            self.by_addr = table;
        }
    }

    fn get_ref(&self, id: u32) -> LeaseRef<'_> {
        let s = &self.slots[id as usize];
        LeaseRef {
            owner: self.arena.get(s),
            subnet: s.subnet,
            v4: (s.mac_flags & HAS_V4 != 0).then_some(u128::from(s.v4)),
            v6: (s.mac_flags & HAS_V6 != 0).then(|| self.v6[id as usize]),
            mac: s.mac_flags & MAC_MASK,
        }
    }

    /// `owner` with its hash.
    pub(crate) fn key<'a>(&self, owner: &'a str) -> OwnerKey<'a> {
        OwnerKey {
            name: owner,
            h32: (self.hasher.hash_one(owner) >> 32) as u32,
        }
    }

    /// The lease of `owner`.
    pub(crate) fn by_owner(&self, owner: &str) -> Option<(u32, LeaseRef<'_>)> {
        self.by_key(self.key(owner))
    }

    /// The lease of an owner whose hash is known.
    pub(crate) fn by_key(&self, key: OwnerKey<'_>) -> Option<(u32, LeaseRef<'_>)> {
        let id = *self.by_owner.find(expand(key.h32), |&i| {
            let s = &self.slots[i as usize];
            s.owner_hash == key.h32 && self.arena.get(s) == key.name
        })?;
        Some((id, self.get_ref(id)))
    }

    /// The lease holding `addr` of `family` in `subnet`.
    pub(crate) fn by_addr(&self, subnet: u32, family: Family, addr: u128) -> Option<LeaseRef<'_>> {
        let h = addr_key_hash(&self.hasher, subnet, addr);
        let slots = &self.slots;
        let v6 = &self.v6;
        let e = *self
            .by_addr
            .find(h, |&e| entry_key(slots, v6, e) == (subnet, family, addr))?;
        Some(self.get_ref(e & !V6_TAG))
    }

    /// The lease holding `mac`: looked up in the MAC index, then, when `scan` is set, among
    /// the leases whose MAC is not indexed.
    pub(crate) fn by_mac(&self, mac: u64, scan: bool) -> Option<LeaseRef<'_>> {
        let h = self.hasher.hash_one(mac);
        let found = self
            .by_mac
            .find(h, |&i| self.slots[i as usize].mac_flags & MAC_MASK == mac);
        if let Some(&id) = found {
            return Some(self.get_ref(id));
        }
        if !scan {
            return None;
        }
        let id = self.slots.iter().position(|s| {
            s.mac_flags & (LIVE | MAC_INDEXED) == LIVE && s.mac_flags & MAC_MASK == mac
        })?;
        Some(self.get_ref(id as u32))
    }

    /// True when `owner` fits in the arena (compacting it first if that helps).
    pub(crate) fn has_room_for(&mut self, owner: &str) -> bool {
        if self.arena.text.len() + owner.len() <= MAX_ARENA {
            return true;
        }
        self.compact();
        self.arena.text.len() + owner.len() <= MAX_ARENA
    }

    /// Stores a lease. The caller has checked that owner, addresses and MAC are not held and
    /// that the owner fits ([`Leases::has_room_for`]). `index_mac` is false only for MACs that
    /// the generator has issued, which [`Leases::by_mac`] finds by scanning.
    pub(crate) fn insert(
        &mut self,
        key: OwnerKey<'_>,
        subnet: u32,
        (v4, v6): (Option<u128>, Option<u128>),
        mac: u64,
        index_mac: bool,
    ) -> u32 {
        let mut mac_flags = mac & MAC_MASK | LIVE;
        if index_mac {
            mac_flags |= MAC_INDEXED;
        }
        if v4.is_some() {
            mac_flags |= HAS_V4;
        }
        if v6.is_some() {
            mac_flags |= HAS_V6;
        }
        let owner = key.name;
        let owner_hash = key.h32;
        // IPv4 values come from IPv4 addresses: they fit in 32 bits.
        debug_assert!(owner.len() <= MAX_OWNER_LEN);
        mac_flags |= ((owner.len() & MAX_OWNER_LEN) as u64) << LEN_SHIFT;
        self.make_room(1, usize::from(v4.is_some()) + usize::from(v6.is_some()));
        let owner_off = self.arena.text.len() as u32;
        self.arena.text.push_str(owner);
        let slot = Slot {
            mac_flags,
            owner_off,
            owner_hash,
            subnet,
            v4: v4.unwrap_or(0) as u32,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        if let Some(a) = v6 {
            if self.v6.len() <= id as usize {
                self.v6.resize(self.slots.len(), 0);
            }
            self.v6[id as usize] = a;
        }
        let hasher = &self.hasher;
        let slots = &self.slots;
        let v6s = &self.v6;
        self.by_owner.insert_unique(expand(owner_hash), id, |&i| {
            expand(slots[i as usize].owner_hash)
        });
        if index_mac {
            self.by_mac
                .insert_unique(hasher.hash_one(mac & MAC_MASK), id, |&i| {
                    hasher.hash_one(slots[i as usize].mac_flags & MAC_MASK)
                });
        }
        for (addr, tag) in [(v4, 0), (v6, V6_TAG)] {
            if let Some(a) = addr {
                self.by_addr
                    .insert_unique(addr_key_hash(hasher, subnet, a), id | tag, |&e| {
                        addr_hash(hasher, slots, v6s, e)
                    });
            }
        }
        self.len += 1;
        id
    }

    /// Removes lease `id` and returns (subnet, v4, v6, mac).
    pub(crate) fn remove(&mut self, id: u32) -> (u32, Option<u128>, Option<u128>, u64) {
        let (subnet, v4, v6, mac) = {
            let r = self.get_ref(id);
            (r.subnet, r.v4, r.v6, r.mac)
        };
        let hasher = &self.hasher;
        let owner_hash = expand(self.slots[id as usize].owner_hash);
        if let Ok(e) = self.by_owner.find_entry(owner_hash, |&i| i == id) {
            e.remove();
        }
        if self.slots[id as usize].mac_flags & MAC_INDEXED != 0
            && let Ok(e) = self.by_mac.find_entry(hasher.hash_one(mac), |&i| i == id)
        {
            e.remove();
        }
        for (addr, tag) in [(v4, 0), (v6, V6_TAG)] {
            if let Some(a) = addr {
                let h = addr_key_hash(hasher, subnet, a);
                if let Ok(e) = self.by_addr.find_entry(h, |&e| e == id | tag) {
                    e.remove();
                }
            }
        }
        let slot = std::mem::take(&mut self.slots[id as usize]);
        self.arena.garbage += slot.owner_len();
        self.free.push(id);
        self.len -= 1;
        if self.arena.garbage > 4096 && self.arena.garbage * 2 > self.arena.text.len() {
            self.compact();
        }
        (subnet, v4, v6, mac)
    }

    /// Rewrites the arena with live names only.
    fn compact(&mut self) {
        let mut text = String::with_capacity(self.arena.text.len() - self.arena.garbage);
        for slot in self.slots.iter_mut().filter(|s| s.mac_flags & LIVE != 0) {
            let start = slot.owner_off as usize;
            slot.owner_off = text.len() as u32;
            text.push_str(&self.arena.text[start..start + slot.owner_len()]);
        }
        self.arena = Arena { text, garbage: 0 };
    }

    /// Live leases in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = LeaseRef<'_>> + '_ {
        (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].mac_flags & LIVE != 0)
            .map(|i| self.get_ref(i))
    }

    /// Bytes held on the heap by the store, computed from capacities and sizes (owner text by
    /// its length, hash tables by the allocation size hashbrown reports).
    pub(crate) fn heap_bytes(&self) -> usize {
        let slots = self.slots.capacity() * size_of::<Slot>();
        let owners = self.arena.text.len();
        let v6 = self.v6.capacity() * size_of::<u128>();
        let free = self.free.capacity() * size_of::<u32>();
        slots
            + owners
            + v6
            + free
            + self.by_owner.allocation_size()
            + self.by_addr.allocation_size()
            + self.by_mac.allocation_size()
    }
}

/// (subnet, family, address) of an address-index entry.
fn entry_key(slots: &[Slot], v6: &[u128], e: u32) -> (u32, Family, u128) {
    let id = (e & !V6_TAG) as usize;
    let s = &slots[id];
    if e & V6_TAG != 0 {
        (s.subnet, Family::V6, v6[id])
    } else {
        (s.subnet, Family::V4, u128::from(s.v4))
    }
}

fn addr_hash(hasher: &FixedState, slots: &[Slot], v6: &[u128], e: u32) -> u64 {
    let (subnet, _, a) = entry_key(slots, v6, e);
    addr_key_hash(hasher, subnet, a)
}

/// Addresses per block of the address index.
const ADDR_BLOCK_BITS: u32 = 6;
/// Bits of a table hash that pick the bucket; the 7 above them are hashbrown's tag.
const BUCKET_BITS: u64 = (1 << 57) - 1;

/// The address index's hash of (subnet, address). The subnet and the address without its low 6
/// bits go through the seeded hasher; the low bits are added to the bucket part. So the 64
/// addresses of an aligned block land in 64 consecutive buckets, and handing addresses out in
/// order touches a few cache lines per block instead of one per address. The tag part mixes the
/// low bits in too, so addresses of one block rarely share a tag and a lookup reads one slot.
/// Blocks still land at seeded, unpredictable places.
fn addr_key_hash(hasher: &FixedState, subnet: u32, a: u128) -> u64 {
    let low = (a as u64) & ((1 << ADDR_BLOCK_BITS) - 1);
    let h = hasher.hash_one((subnet, a >> ADDR_BLOCK_BITS));
    let bucket = h.wrapping_add(low) & BUCKET_BITS;
    let tag = (h ^ low.wrapping_mul(0x9E37_79B9_7F4A_7C15)) & !BUCKET_BITS;
    bucket | tag
}

/// Capacity of a rebuilt index that holds `live` entries and must take `extra` more: twice the
/// live size, so that the rebuilds' cost per insert stays constant.
fn grown(live: usize, extra: usize) -> usize {
    live.saturating_mul(2)
        .max(live.saturating_add(extra))
        .max(16)
}

/// The hasher of a table that [`Leases::make_room`] keeps from growing on its own.
fn unreachable() -> u64 {
    unreachable!("the index was given room before the insert")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_survive_arena_compaction_and_slot_reuse() {
        let mut leases = Leases::new(5);
        let name = |i: u32| format!("namespace-{i}/a-fairly-long-pod-name-{i}/eth0");
        for i in 0..3000u32 {
            leases.insert(
                leases.key(&name(i)),
                0,
                (Some(u128::from(i)), None),
                u64::from(i) + 1,
                i % 2 == 0,
            );
        }
        for i in (0..3000u32).filter(|i| i % 10 != 0) {
            let (id, _) = leases.by_owner(&name(i)).unwrap();
            leases.remove(id);
        }
        assert!(leases.arena.text.len() < 3000 * 40, "arena was compacted");
        for i in 3000..3500u32 {
            leases.insert(
                leases.key(&name(i)),
                0,
                (Some(u128::from(i)), None),
                u64::from(i) + 1,
                i % 2 == 0,
            );
        }
        for i in 0..3500u32 {
            let live = i % 10 == 0 || i >= 3000;
            let found = leases
                .by_owner(&name(i))
                .map(|(_, r)| (r.owner.to_string(), r.v4, r.mac));
            let want = live.then(|| (name(i), Some(u128::from(i)), u64::from(i) + 1));
            assert_eq!(found, want);
            assert_eq!(leases.by_addr(0, Family::V4, u128::from(i)).is_some(), live);
            assert_eq!(leases.by_mac(u64::from(i) + 1, true).is_some(), live);
            assert_eq!(
                leases.by_mac(u64::from(i) + 1, false).is_some(),
                live && i % 2 == 0
            );
        }
        assert_eq!(leases.len(), 800);
        assert_eq!(leases.iter().count(), 800);
    }
}
