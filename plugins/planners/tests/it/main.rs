//! Integration tests of the planners bundle: the real bundle file loaded by the host (alone and
//! with the UDF and Delta bundles), and the same planners installed natively. One test binary.

mod planners;
