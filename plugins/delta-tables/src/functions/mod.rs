//! The bundle's table functions: `delta_scan`, `delta_history`, `delta_changes`.
//!
//! Arguments are positional (DataFusion 55 plans no named arguments for table functions), so
//! a version and a timestamp are told apart by type: integers are versions, text and
//! timestamps are points in time.

pub mod changes;
pub mod history;
pub mod scan;

use std::collections::{BTreeMap, HashMap};

use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{Cast, Expr};

use crate::location::{TableLocation, plan, scalar_text};

/// The constant value of argument `index`, or `None` when it was not given.
fn argument(
    function: &str,
    exprs: &[Expr],
    index: usize,
    name: &str,
) -> Result<Option<ScalarValue>> {
    let Some(expr) = exprs.get(index) else {
        return Ok(None);
    };
    match expr {
        Expr::Literal(value, _) => Ok(Some(value.clone())),
        Expr::Cast(Cast { expr, field }) => match expr.as_ref() {
            Expr::Literal(value, _) => Ok(Some(value.cast_to(field.data_type())?)),
            _ => Err(not_constant(function, name, expr)),
        },
        other => Err(not_constant(function, name, other)),
    }
}

fn not_constant(function: &str, name: &str, expr: &Expr) -> datafusion::error::DataFusionError {
    plan(format!(
        "{function}: argument '{name}' must be a constant, got {expr}"
    ))
}

/// Fails when more than `max` arguments were given.
fn at_most(function: &str, exprs: &[Expr], max: usize, usage: &str) -> Result<()> {
    if exprs.len() > max {
        return Err(plan(format!(
            "{function} takes at most {max} arguments, got {}. Usage: {usage}",
            exprs.len()
        )));
    }
    Ok(())
}

/// The table location: the first argument, a non-NULL string.
fn location_argument(
    function: &str,
    exprs: &[Expr],
    usage: &str,
    defaults: &BTreeMap<String, String>,
) -> Result<TableLocation> {
    let value = argument(function, exprs, 0, "location")?
        .ok_or_else(|| plan(format!("{function} needs a table location. Usage: {usage}")))?;
    let text = scalar_text(&value).ok_or_else(|| {
        plan(format!(
            "{function}: the location must be a string (a path or URL), got {value}"
        ))
    })?;
    let options: HashMap<String, String> = defaults.clone().into_iter().collect();
    TableLocation::parse(&text, options)
}
