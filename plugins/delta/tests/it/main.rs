//! Integration tests of the Delta bundle: the real bundle file loaded by the host, and the same
//! objects registered natively. One test binary (each links DataFusion and deltalake again).

mod delta;
mod util;
