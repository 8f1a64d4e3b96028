//! `memcpy` and `memmove` of the static musl build (feature `memcpy`, ADR 0010).
//!
//! musl's x86_64 versions start every copy with `rep movsq` and end it byte by byte with
//! `movsb`: a microcode start-up cost on each of the hundred-odd short copies a request makes
//! (formatting, serialisation, moved futures). Here, up to 64 bytes are a few unaligned loads
//! then stores (so any overlap is safe); longer copies are one `rep movsb`, which processors
//! with ERMS run at full speed. Every target tests `copy`; only the musl build exports it.

use core::arch::asm;
use core::ptr::{read_unaligned, write_unaligned};

/// Copies `n` bytes from `src` to `dst`; the ranges may overlap (`memmove`'s contract).
///
/// # Safety
/// `src` is valid for `n` bytes of reads and `dst` for `n` bytes of writes.
#[inline(always)]
pub unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
    unsafe {
        if n <= 64 {
            short(dst, src, n);
        } else if (dst as usize).wrapping_sub(src as usize) >= n {
            // `dst` below `src`, or no overlap: ascending order reads each byte before it is
            // overwritten.
            asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
                 options(nostack, preserves_flags));
        } else {
            // `dst` inside `src..src + n`: descending order (the direction flag is clear on entry
            // and cleared again, as the ABI requires).
            asm!("std", "rep movsb", "cld", inout("rcx") n => _,
                 inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
                 options(nostack));
        }
    }
}

/// Up to 64 bytes: every load before the first store. Fixed-size accesses, no loop, so the
/// compiler cannot turn this back into a call to `memcpy`.
#[inline(always)]
unsafe fn short(dst: *mut u8, src: *const u8, n: usize) {
    unsafe {
        if n > 32 {
            let (a, b) = (
                read_unaligned(src as *const u128),
                read_unaligned(src.add(16) as *const u128),
            );
            let (c, d) = (
                read_unaligned(src.add(n - 32) as *const u128),
                read_unaligned(src.add(n - 16) as *const u128),
            );
            write_unaligned(dst as *mut u128, a);
            write_unaligned(dst.add(16) as *mut u128, b);
            write_unaligned(dst.add(n - 32) as *mut u128, c);
            write_unaligned(dst.add(n - 16) as *mut u128, d);
        } else if n >= 16 {
            pair::<u128>(dst, src, n);
        } else if n >= 8 {
            pair::<u64>(dst, src, n);
        } else if n >= 4 {
            pair::<u32>(dst, src, n);
        } else if n >= 2 {
            pair::<u16>(dst, src, n);
        } else if n == 1 {
            *dst = *src;
        }
    }
}

/// `size_of::<T>() <= n <= 2 * size_of::<T>()`: the first and the last `T`, overlapping.
#[inline(always)]
unsafe fn pair<T>(dst: *mut u8, src: *const u8, n: usize) {
    let tail = n - size_of::<T>();
    unsafe {
        let (head_value, tail_value) = (
            read_unaligned(src as *const T),
            read_unaligned(src.add(tail) as *const T),
        );
        write_unaligned(dst as *mut T, head_value);
        write_unaligned(dst.add(tail) as *mut T, tail_value);
    }
}

#[cfg(target_env = "musl")]
mod export {
    /// Replaces musl's `memcpy` in the static binary (its archive member is then never linked).
    ///
    /// # Safety
    /// The C contract of `memcpy`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        unsafe { super::copy(dst, src, n) };
        dst
    }

    /// Replaces musl's `memmove`, which would otherwise link musl's `memcpy` back in.
    ///
    /// # Safety
    /// The C contract of `memmove`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        unsafe { super::copy(dst, src, n) };
        dst
    }
}

#[cfg(test)]
mod tests {
    use super::copy;

    /// Every length up to past the `rep movsb` threshold, every alignment of a word, and every
    /// overlap in both directions, against a byte-by-byte reference.
    #[test]
    fn copies_like_memmove() {
        const SPAN: usize = 400;
        let pattern: Vec<u8> = (0..SPAN).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..=200 {
            for src_at in 0..8 {
                for dst_at in 0..SPAN - n {
                    let mut got = pattern.clone();
                    let mut want = pattern.clone();
                    let tmp: Vec<u8> = want[src_at..src_at + n].to_vec();
                    for (i, byte) in tmp.into_iter().enumerate() {
                        want[dst_at + i] = byte;
                    }
                    let base = got.as_mut_ptr();
                    unsafe { copy(base.add(dst_at), base.add(src_at), n) };
                    assert!(got == want, "n={n} src={src_at} dst={dst_at}");
                }
            }
        }
    }
}
