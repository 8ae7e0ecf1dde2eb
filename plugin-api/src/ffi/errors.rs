//! Errors that crossed as strings, worded again as DataFusion words them.
//!
//! datafusion-ffi, and this project's FFI types, carry a bundle's errors as their display
//! strings, which the consumer turns into `DataFusionError::Ffi`: a bundle's "Execution error:
//! x" would reach the user as "FFI error: Execution error: x". The string starts with
//! DataFusion's own prefix for the variant, so the variant is rebuilt from it, and the message
//! reads exactly as the same object's would natively. Errors without a known prefix stay `Ffi`.

use datafusion::error::{DataFusionError, Result};

type Variant = fn(String) -> DataFusionError;

/// The variants a bundle's error can be rebuilt into, by their display prefix.
const VARIANTS: [(&str, Variant); 5] = [
    ("Execution error: ", DataFusionError::Execution),
    ("Error during planning: ", DataFusionError::Plan),
    (
        "This feature is not implemented: ",
        DataFusionError::NotImplemented,
    ),
    ("Resources exhausted: ", DataFusionError::ResourcesExhausted),
    (
        "Invalid or Unsupported Configuration: ",
        DataFusionError::Configuration,
    ),
];

/// `Ffi("Execution error: x")` becomes `Execution("x")`; anything else is returned as is.
pub fn native(e: DataFusionError) -> DataFusionError {
    let DataFusionError::Ffi(message) = e else {
        return e;
    };
    for (prefix, variant) in VARIANTS {
        if let Some(rest) = message.strip_prefix(prefix) {
            return variant(rest.to_owned());
        }
    }
    DataFusionError::Ffi(message)
}

/// [`native`] over a result.
pub fn natively<T>(r: Result<T>) -> Result<T> {
    r.map_err(native)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_the_variant_from_its_prefix() {
        let e = native(DataFusionError::Ffi("Execution error: boom".into()));
        assert_eq!(e.to_string(), "Execution error: boom");
        assert!(matches!(e, DataFusionError::Execution(_)));
        let e = native(DataFusionError::Ffi("Error during planning: bad".into()));
        assert!(matches!(e, DataFusionError::Plan(_)));
        let e = native(DataFusionError::Ffi("something else".into()));
        assert_eq!(e.to_string(), "FFI error: something else");
    }
}
