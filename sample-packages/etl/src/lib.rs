//! The sample ETL chain: extract numbers, double them, sum them.
//!
//! Until the plugin SDK exists this is a plain cdylib whose tasks are
//! declared in `cloacina.toml`; the task bodies below are what the SDK's
//! `#[task]` functions will wrap.

/// Produces the raw input.
pub fn extract() -> Vec<i64> {
    (1..=10).collect()
}

/// Doubles every number.
pub fn transform(numbers: &[i64]) -> Vec<i64> {
    numbers.iter().map(|n| n * 2).collect()
}

/// Sums what transform produced.
pub fn load(numbers: &[i64]) -> i64 {
    numbers.iter().sum()
}

/// Runs the chain in-process: a C entry point that proves the library is a
/// real, callable plugin before the ABI arrives.
#[unsafe(no_mangle)]
pub extern "C" fn etl_run_chain() -> i64 {
    load(&transform(&extract()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_chain_sums_the_doubled_numbers() {
        assert_eq!(super::etl_run_chain(), 110);
    }
}
