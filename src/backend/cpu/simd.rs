//! The instruction set the CPU backend's own loops run on, chosen at run time: a default build
//! assumes only SSE2 on x86-64, yet most machines have AVX2 and many AVX-512. Each loop is written
//! once, as plain Rust over fixed-width lane arrays that the compiler vectorises; `Isa::run`
//! compiles it again for each instruction set and calls the copy this processor can run. No
//! copy uses fused multiply-adds unless its source asks (Rust never contracts a * b + c on its
//! own), so every copy gives the same bits.

use std::sync::OnceLock;

/// An instruction set the loops are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// What the build assumes: SSE2 on x86-64, NEON on aarch64.
    Portable,
    /// x86-64 with AVX2 and FMA (x86-64-v3).
    Avx2,
    /// x86-64 with AVX-512 F, BW, DQ, VL and CD (x86-64-v4).
    Avx512,
}

/// Work that `Isa::run` compiles once per instruction set. Implementations mark `run`
/// `#[inline(always)]`, so that its body is compiled inside each copy, not called from it.
pub trait Kernel {
    type Output;
    fn run(self) -> Self::Output;
}

impl Isa {
    /// The set the loops run on: the best this processor has, found once, or the one
    /// DALE_CPU_ISA asks for (`requested`); a set the processor lacks is never used.
    pub fn detected() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            let asked = Isa::requested().ok().flatten().unwrap_or(Isa::Avx512);
            Isa::best().min(asked)
        })
    }

    /// DALE_CPU_ISA=portable|avx2|avx512, which asks for a set at most that high, to compare
    /// paths: None when unset; an error naming the value and the allowed ones otherwise (the
    /// dale command refuses to start on it).
    pub fn requested() -> Result<Option<Isa>, String> {
        let Some(value) = std::env::var_os("DALE_CPU_ISA") else {
            return Ok(None);
        };
        match value.to_str() {
            Some("portable") => Ok(Some(Isa::Portable)),
            Some("avx2") => Ok(Some(Isa::Avx2)),
            Some("avx512") => Ok(Some(Isa::Avx512)),
            _ => Err(format!(
                "DALE_CPU_ISA = {value:?}; allowed: portable, avx2, avx512 (or unset: the best this processor has)"
            )),
        }
    }

    /// Every set this processor can run, Portable first.
    pub fn available() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|&isa| isa <= Isa::best())
            .collect()
    }

    /// The best set this processor has.
    fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("avx2") && has!("fma") {
                    let v4 = has!("avx512f")
                        && has!("avx512bw")
                        && has!("avx512dq")
                        && has!("avx512vl")
                        && has!("avx512cd");
                    return if v4 { Isa::Avx512 } else { Isa::Avx2 };
                }
            }
            Isa::Portable
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "AVX2",
            Isa::Avx512 => "AVX-512",
        }
    }

    /// Runs `kernel` compiled for this set.
    ///
    /// # Panics
    /// If the processor lacks the set: pass only `detected` or one of `available`.
    #[inline(always)]
    pub fn run<K: Kernel>(self, kernel: K) -> K::Output {
        match self {
            Isa::Portable => kernel.run(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                assert!(self <= Isa::best(), "this processor has no AVX2");
                // SAFETY: this processor has AVX2 and FMA (asserted above).
                unsafe { run_avx2(kernel) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                assert!(self <= Isa::best(), "this processor has no AVX-512");
                // SAFETY: this processor has the AVX-512 subsets named (asserted above).
                unsafe { run_avx512(kernel) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => panic!("{} is an x86-64 instruction set", self.name()),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<K: Kernel>(kernel: K) -> K::Output {
    kernel.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512cd,avx2,fma")]
unsafe fn run_avx512<K: Kernel>(kernel: K) -> K::Output {
    kernel.run()
}
