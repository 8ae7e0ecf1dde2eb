//! `behaviour.expr_planner.*`, `behaviour.type_planner.*`, `behaviour.relation_planner.*`:
//! planners decline what they did not declare. The host already never asks a planner about
//! undeclared hooks, operators or types; these checks call the bundle's FFI functions
//! directly, as a host that forgot to filter would, and expect `Original` / `None` back — and
//! for declared types, a field the host can read. A relation planner must leave FROM items it
//! does not own as DataFusion plans them.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::TaskContextProvider;
use datafusion::logical_expr::sqlparser::ast::{self, Ident, ObjectName};
use datafusion::prelude::SessionContext;
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::util::{FFI_Option, FFI_Result};
use df_plugin_api::ffi::planner::FFI_PlannerResult;
use df_plugin_api::ffi::planner::ast_to_json;
use df_plugin_api::ffi::planner::expr::hooks;

use super::report::Report;
use crate::PluginRegistry;
use crate::metadata::BundleMetadata;

/// SQL types no planner should claim unless it declared them.
fn undeclared_types() -> Vec<ast::DataType> {
    vec![
        ast::DataType::Int(None),
        ast::DataType::Varchar(None),
        ast::DataType::Custom(
            ObjectName::from(vec![Ident::new("DF_PLUGIN_CONFORMANCE_TYPE")]),
            vec![],
        ),
    ]
}

pub(super) async fn check_all(
    ctx: &Arc<SessionContext>,
    meta: &BundleMetadata,
    report: &mut Report,
) {
    let Some(live) = PluginRegistry::of(ctx).live_by_name(&meta.manifest.bundle.name) else {
        return;
    };
    for planner in &live.objects.type_planners {
        let declared: Vec<String> = planner.type_names.iter().map(|s| s.to_string()).collect();
        let mut problems = Vec::new();
        let mut asked = Vec::new();
        for sql_type in undeclared_types() {
            let name = df_plugin_api::ffi::planner::type_planner::type_base_name(&sql_type);
            if declared.contains(&name) {
                continue;
            }
            asked.push(name.clone());
            let Ok(json) = ast_to_json(&sql_type, "SQL type") else {
                continue;
            };
            // SAFETY: the bundle's function, with a borrowed argument valid for the call.
            match unsafe { (planner.plan_type_field)(planner, json.as_str().into()) } {
                FFI_Result::Ok(FFI_Option::None) => {}
                FFI_Result::Ok(FFI_Option::Some(_)) => {
                    problems.push(format!("claimed {name}, which it did not declare"))
                }
                FFI_Result::Err(e) => problems.push(format!("failed on undeclared {name}: {e}")),
            }
        }
        for name in &declared {
            let sql_type =
                ast::DataType::Custom(ObjectName::from(vec![Ident::new(name.as_str())]), vec![]);
            let Ok(json) = ast_to_json(&sql_type, "SQL type") else {
                continue;
            };
            // SAFETY: as above.
            match unsafe { (planner.plan_type_field)(planner, json.as_str().into()) } {
                FFI_Result::Ok(FFI_Option::Some(schema)) => {
                    if let Err(e) = Field::try_from(&schema.0) {
                        problems.push(format!("answered {name} with an unreadable field: {e}"));
                    }
                }
                FFI_Result::Ok(FFI_Option::None) => {}
                FFI_Result::Err(e) if super::is_panic(e.as_str()) => {
                    problems.push(format!("panicked on its declared type {name}: {e}"))
                }
                FFI_Result::Err(_) => {}
            }
        }
        report.outcome(
            format!("behaviour.type_planner.{}", planner.name),
            if problems.is_empty() {
                Ok(format!(
                    "declined {} (undeclared); answered its own {} with readable fields",
                    asked.join(", "),
                    declared.join(", ")
                ))
            } else {
                Err(problems.join("\n"))
            },
        );
    }

    let session = Arc::clone(ctx) as Arc<dyn TaskContextProvider>;
    let host = FFI_TaskContextProvider::from(&session);
    for planner in &live.objects.expr_planners {
        let mut problems = Vec::new();
        let mut asked = 0;
        for bit in (0..32).map(|i| 1u32 << i).filter(|b| hooks::ALL & b != 0) {
            if planner.hooks & bit != 0
                || bit == hooks::BINARY_OP
                || bit == hooks::COMPOUND_IDENTIFIER
            {
                continue;
            }
            asked += 1;
            // SAFETY: the bundle's function, with borrowed (empty) arguments valid for the call.
            let answer = unsafe {
                (planner.plan_exprs)(planner, bit, (&[][..]).into(), 0, (&[][..]).into(), &host)
            };
            if !matches!(answer, FFI_Result::Ok(FFI_PlannerResult::Original)) {
                problems.push(format!(
                    "did not decline hook bit {bit:#x}, which it did not declare"
                ));
            }
        }
        let declared_ops: Vec<String> = planner.binary_ops.iter().map(|s| s.to_string()).collect();
        for op in ["+", "=", "AND"] {
            if declared_ops.iter().any(|d| d == op) {
                continue;
            }
            asked += 1;
            // SAFETY: as above.
            let answer = unsafe {
                (planner.plan_binary_op)(
                    planner,
                    op.into(),
                    (&[][..]).into(),
                    (&[][..]).into(),
                    (&[][..]).into(),
                    &host,
                )
            };
            if !matches!(answer, FFI_Result::Ok(FFI_PlannerResult::Original)) {
                problems.push(format!(
                    "did not decline operator {op}, which it did not declare"
                ));
            }
        }
        report.outcome(
            format!("behaviour.expr_planner.{}", planner.name),
            if problems.is_empty() {
                Ok(format!(
                    "declined all {asked} undeclared hooks and operators it was offered"
                ))
            } else {
                Err(problems.join("\n"))
            },
        );
    }

    if !live.objects.relation_planners.is_empty() {
        let verdict = plain_tables_unchanged(ctx).await;
        for planner in &live.objects.relation_planners {
            report.outcome(
                format!("behaviour.relation_planner.{}", planner.name),
                verdict.clone(),
            );
        }
    }
}

/// FROM items the bundle does not own (a table, a subquery, a join) give the same rows with its
/// relation planners installed as in a session without them.
async fn plain_tables_unchanged(ctx: &SessionContext) -> Result<String, String> {
    const QUERIES: [&str; 3] = [
        "SELECT * FROM df_plugin_conformance_t ORDER BY id",
        "SELECT s.id, s.name FROM (SELECT * FROM df_plugin_conformance_t) AS s ORDER BY s.id",
        "SELECT a.id, b.name FROM df_plugin_conformance_t a JOIN df_plugin_conformance_t b ON a.id = b.id ORDER BY a.id",
    ];
    let plain = super::fresh_session(4);
    let register = |ctx: &SessionContext| -> datafusion::error::Result<()> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            ],
        )?;
        ctx.register_table(
            "df_plugin_conformance_t",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
        )?;
        Ok(())
    };
    register(ctx).map_err(|e| e.to_string())?;
    register(&plain).map_err(|e| e.to_string())?;
    let mut result = Ok(format!(
        "{} queries over a table it does not own gave DataFusion's rows",
        QUERIES.len()
    ));
    for sql in QUERIES {
        let with = df_plugin_conformance::query::query_csv(ctx, sql).await;
        let without = df_plugin_conformance::query::query_csv(&plain, sql).await;
        match (with, without) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(a), Ok(b)) => {
                result = Err(format!("{sql}: with the bundle\n{a}without it\n{b}"));
                break;
            }
            (Err(e), _) => {
                result = Err(format!("{sql} failed with the bundle's planners: {e}"));
                break;
            }
            (_, Err(e)) => {
                result = Err(format!("{sql} failed without the bundle: {e}"));
                break;
            }
        }
    }
    let _ = ctx.deregister_table("df_plugin_conformance_t");
    result
}
