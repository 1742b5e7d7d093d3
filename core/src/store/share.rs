//! [`Share`]: what a value stored in a node does when the store copies or
//! releases it, with the [`ShareToken`] that keeps copies inside the store,
//! and [`share_fields!`], which implements it for a struct field by field.
//! (See "Memory verbs" in the module docs: *share*, *release*, *drop
//! later*.)

use super::deferred::{Deferred, DropLater, HostValue};
use super::reclaim::Txn;
use crate::sync::StdArc;
use std::any::Any;

/// Proof that the caller is the store: only the store can make one, so
/// only the store can call [`Share::share`].
pub(crate) struct ShareToken(pub(super) ());

/// A value stored in a [`Trie`](super::trie::Trie) entry (or the roots of a version),
/// copied when the store copies the node holding it (a path copy) and
/// released when it leaves the version being built.
///
/// A copy shares whatever nodes the value points to (a set's tree) without
/// keeping any version alive, so only the store may make one: `share`
/// takes a [`ShareToken`]. Code outside the store implements it for its
/// own value types by sharing and releasing their fields.
///
/// # Safety
///
/// The store's memory safety rests on each implementation (the store frees
/// nodes by what `release` gives up, and no further):
///
/// * `share` returns a value that points to exactly the nodes `self`
///   points to, reaching each through a field's own `share` once (two
///   copies of one field would be two owners of its nodes);
/// * `release` gives every node `self` points to up to the transaction
///   exactly once (each field that points to nodes is released once, and
///   nothing else is given up) and leaves `self` pointing to none;
/// * neither runs host code, and `drop_later` runs none either: it only
///   moves the value's host values into `later` (or drops values whose
///   drop runs no host code);
/// * if [`bit_copy`](Self::bit_copy) returns `true`, `share` returns a
///   bit-for-bit copy of `self` for every value of the type (it takes no
///   count and clones no host value), so a copy of the bytes is a share.
pub(crate) unsafe trait Share: Sized {
    /// Whether `share` is a plain copy of the bytes for every value of this
    /// type (see the trait's contract): a path copy then copies a node's
    /// values as one block. A function of the type alone, which the
    /// compiler folds (a `const` cannot ask whether a type is `()`).
    #[inline(always)]
    fn bit_copy() -> bool {
        false
    }

    /// A copy sharing every node `self` points to.
    fn share(&self, token: &ShareToken) -> Self;

    /// Gives every node `self` points to up to `txn` and leaves `self`
    /// pointing to none (a set becomes empty). The store calls it on every
    /// value that leaves the version `txn` builds (removed or replaced in a
    /// [`Trie`](super::trie::Trie), or the latest roots when the last version goes). Safe to
    /// call on a value reached through `path_mut` too: the nodes leave the
    /// version with it.
    fn release(&mut self, txn: &mut Txn<'_>);

    /// Drops this copy, moving whatever of it may run host code when
    /// dropped into `later`, which the writer drops once its lock is
    /// released ([`Deferred`]). The default drops it here: right for
    /// values with no host destructor.
    #[inline]
    fn drop_later(self, later: &mut Deferred) {
        let _ = later;
    }
}

// SAFETY: `Share`'s contract: `drop_later` runs no host code, it only
// moves the value's host values into `later`.
unsafe impl<V: Share> DropLater for V {
    #[inline]
    fn drop_later(self, later: &mut Deferred) {
        Share::drop_later(self, later);
    }
}

// SAFETY: points to no node; `drop_later` moves the whole value into
// `later`, running nothing.
unsafe impl Share for HostValue {
    fn share(&self, _: &ShareToken) -> Self {
        HostValue::clone(self)
    }

    fn release(&mut self, _: &mut Txn<'_>) {}

    #[inline]
    fn drop_later(self, later: &mut Deferred) {
        later.push(self);
    }
}

// SAFETY: points to no node and has no destructor.
unsafe impl Share for () {
    fn share(&self, _: &ShareToken) -> Self {}

    fn release(&mut self, _: &mut Txn<'_>) {}
}

/// A field of a [`share_fields!`] struct that holds a host value: a
/// reference count, copied by a clone and handed whole to [`Deferred`].
/// Implemented here only, for reference counts of types that hold no node.
///
/// # Safety
///
/// If [`bit_copy`](Self::bit_copy) returns `true`, `clone_host` returns a
/// bit-for-bit copy for every value of the type (no count is taken), and
/// dropping such a copy runs nothing.
pub(crate) unsafe trait HostField: Sized {
    /// A copy (a reference count's increment).
    fn clone_host(&self) -> Self;
    /// Hands the value to `later` (see [`Share::drop_later`]).
    fn drop_later(self, later: &mut Deferred);
    /// Whether `clone_host` is a plain copy of the bytes (see the trait's
    /// contract).
    #[inline(always)]
    fn bit_copy() -> bool {
        false
    }
}

// SAFETY: `bit_copy` is the default `false`; `drop_later` moves the count
// into `later`.
unsafe impl<X: Send + Sync + 'static> HostField for Option<StdArc<X>> {
    #[inline]
    fn clone_host(&self) -> Self {
        self.clone()
    }

    #[inline]
    fn drop_later(self, later: &mut Deferred) {
        if let Some(x) = self {
            later.push(x);
        }
    }
}

/// `Some(&())` when `X` is `()`, else `None`. The compiler folds the check.
#[inline(always)]
pub(crate) fn unit<X: 'static>() -> Option<&'static X> {
    (&() as &dyn Any).downcast_ref::<X>()
}

/// A host value shared by a reference count, or no count at all when `X`
/// is `()`: [`get`](Self::get) then lends the one `()`. Only
/// [`new`](Self::new) makes one, so no value of `HostArc<()>` holds a
/// count, and a path copy copies such a field as plain bits (`bit_copy`).
pub(crate) struct HostArc<X>(Option<StdArc<X>>);

impl<X: 'static> HostArc<X> {
    /// `x` behind a new reference count, or nothing if `X` is `()`.
    pub(crate) fn new(x: X) -> Self {
        if unit::<X>().is_some() {
            HostArc(None)
        } else {
            HostArc(Some(StdArc::new(x)))
        }
    }

    /// The value: the shared one, or the one `()`.
    #[inline(always)]
    pub(crate) fn get(&self) -> Option<&X> {
        match &self.0 {
            Some(x) => Some(x),
            None => unit::<X>(),
        }
    }

    /// The reference count, if there is one (none when `X` is `()`).
    pub(crate) fn count(&self) -> Option<&StdArc<X>> {
        self.0.as_ref()
    }
}

impl<X> Clone for HostArc<X> {
    fn clone(&self) -> Self {
        HostArc(self.0.clone())
    }
}

// SAFETY: `bit_copy` is true only for `HostArc<()>`, whose every value is
// `HostArc(None)` (`new` is the only constructor): its clone is a copy of
// the bytes and dropping it runs nothing. `drop_later` moves the count,
// if any, into `later`.
unsafe impl<X: Send + Sync + 'static> HostField for HostArc<X> {
    #[inline]
    fn clone_host(&self) -> Self {
        self.clone()
    }

    #[inline]
    fn drop_later(self, later: &mut Deferred) {
        if let Some(x) = self.0 {
            later.push(x);
        }
    }

    #[inline(always)]
    fn bit_copy() -> bool {
        unit::<X>().is_some()
    }
}

/// [`Share::bit_copy`] of the field `field` projects to (`share_fields!`).
#[inline(always)]
pub(crate) fn shared_bit_copy<S, F: Share>(_field: fn(&S) -> &F) -> bool {
    F::bit_copy()
}

/// [`HostField::bit_copy`] of the field `field` projects to
/// (`share_fields!`).
#[inline(always)]
pub(crate) fn host_bit_copy<S, F: HostField>(_field: fn(&S) -> &F) -> bool {
    F::bit_copy()
}

/// Implements [`Share`] for a struct from the role of each field, so that
/// code outside the store needs no `unsafe` to store its own types:
///
/// * `copied`: `Copy` fields (no nodes, no destructor), copied;
/// * `shared`: [`Share`] fields, each shared, released and handed to
///   `later` once;
/// * `host`: [`HostField`]s, cloned and handed to `later` whole.
///
/// Why the generated impl keeps `Share`'s contract whatever the caller
/// lists: `share` builds the struct with a struct literal, which the
/// compiler checks names every field exactly once, so no field is shared
/// twice or left out; `release` and `drop_later` go over the same lists.
/// A `copied` field that is not `Copy` does not compile (it would be moved
/// out of a borrow), nor does a `host` field that is not a [`HostField`].
/// `bit_copy` holds when every shared and host field's does (each field's
/// type is read off a projection of it, so none is left out but by being
/// missing from the lists, which the struct literal rules out): `share`
/// then copies every field's bytes, hence the struct's.
macro_rules! share_fields {
    (
        impl<$($g:ident),*> for $name:ident<$($a:ident),*> where [$($wc:tt)*] {
            copied: [$($c:ident),*],
            shared: [$($s:ident),*],
            host: [$($h:ident),*] $(,)?
        }
    ) => {
        // SAFETY: generated by `share_fields!` (`store/share.rs`): each field
        // is named once in the struct literal (the compiler checks it), so
        // `share` shares every `Share` field once and `release` gives up
        // what each of them points to once; copied and host fields point to
        // no node; nothing here hashes, compares or drops a host value.
        #[allow(unsafe_code)]
        unsafe impl<$($g),*> $crate::store::Share for $name<$($a),*> where $($wc)* {
            #[inline(always)]
            fn bit_copy() -> bool {
                true
                    $(&& $crate::store::shared_bit_copy(|s: &Self| &s.$s))*
                    $(&& $crate::store::host_bit_copy(|s: &Self| &s.$h))*
            }

            #[inline]
            fn share(&self, token: &$crate::store::ShareToken) -> Self {
                $name {
                    $($c: self.$c,)*
                    $($s: $crate::store::Share::share(&self.$s, token),)*
                    $($h: $crate::store::HostField::clone_host(&self.$h),)*
                }
            }

            fn release(&mut self, txn: &mut $crate::store::Txn<'_>) {
                $($crate::store::Share::release(&mut self.$s, txn);)*
            }

            #[inline]
            fn drop_later(self, later: &mut $crate::store::Deferred) {
                $($crate::store::Share::drop_later(self.$s, later);)*
                $($crate::store::HostField::drop_later(self.$h, later);)*
            }
        }
    };
}
pub(crate) use share_fields;

/// `(k, v)` with `v` shared: what a node copy stores.
#[inline]
pub(super) fn share_entry<K: Copy, V: Share>(entry: &(K, V)) -> (K, V) {
    (entry.0, entry.1.share(&ShareToken(())))
}
