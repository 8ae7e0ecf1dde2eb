//! What a bundle's scalar function answered at planning, kept per function.
//!
//! DataFusion asks a scalar function for its return field, and whether it preserves its
//! input's ordering, several times a query: the physical planner, then each optimizer rule
//! that rebuilds a projection the function is in. datafusion-ffi sends every question across,
//! the fields through the C data interface and each input's range as serialized scalars:
//! 30–40K instructions a question, 225K of a `SELECT time_bucket(ts, w)`'s planning (four
//! ordering questions and two for the return field). Both answers are functions of the
//! question alone (a function whose configuration changes is a new function, with a new
//! memo), so the host keeps the latest ones and asks the bundle once per distinct question.

use std::sync::Mutex;

use datafusion::arrow::datatypes::FieldRef;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::ReturnFieldArgs;
use datafusion::logical_expr::sort_properties::ExprProperties;

/// How many answers of each kind a function keeps: a query asks a handful of distinct
/// questions; a session's queries rarely more.
const KEPT: usize = 16;

/// The answers one function gave. It is no part of the function's identity: two functions
/// that differ only in what they were asked are equal.
#[derive(Debug, Default)]
pub(super) struct Answers {
    return_fields: Mutex<Vec<(ReturnFieldQuestion, FieldRef)>>,
    lex_ordering: Mutex<Vec<(Vec<ExprProperties>, bool)>>,
}

impl PartialEq for Answers {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Answers {}

impl std::hash::Hash for Answers {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

#[derive(Debug, PartialEq)]
struct ReturnFieldQuestion {
    arg_fields: Vec<FieldRef>,
    scalar_arguments: Vec<Option<ScalarValue>>,
}

impl ReturnFieldQuestion {
    fn is(&self, arg_fields: &[FieldRef], scalar_arguments: &[Option<&ScalarValue>]) -> bool {
        self.arg_fields == arg_fields
            && self.scalar_arguments.len() == scalar_arguments.len()
            && (self.scalar_arguments.iter())
                .zip(scalar_arguments)
                .all(|(kept, asked)| kept.as_ref() == *asked)
    }
}

impl Answers {
    /// `args`' return field: the one kept for the same question, or `ask`'s, then kept.
    pub(super) fn return_field(
        &self,
        args: ReturnFieldArgs,
        ask: impl FnOnce(ReturnFieldArgs) -> Result<FieldRef>,
    ) -> Result<FieldRef> {
        let (arg_fields, scalar_arguments) = (args.arg_fields, args.scalar_arguments);
        let question = || ReturnFieldQuestion {
            arg_fields: arg_fields.to_vec(),
            scalar_arguments: scalar_arguments.iter().map(|s| s.cloned()).collect(),
        };
        remembered(
            &self.return_fields,
            |kept| kept.is(arg_fields, scalar_arguments),
            question,
            || ask(args),
        )
    }

    /// Whether the function preserves `inputs`' ordering: the answer kept for the same
    /// inputs, or `ask`'s, then kept.
    pub(super) fn preserves_lex_ordering(
        &self,
        inputs: &[ExprProperties],
        ask: impl FnOnce() -> Result<bool>,
    ) -> Result<bool> {
        remembered(
            &self.lex_ordering,
            |kept| kept.len() == inputs.len() && kept.iter().zip(inputs).all(same_properties),
            || inputs.to_vec(),
            ask,
        )
    }
}

/// `ExprProperties` has no `PartialEq`; its parts do.
fn same_properties((a, b): (&ExprProperties, &ExprProperties)) -> bool {
    a.sort_properties == b.sort_properties
        && a.range == b.range
        && a.preserves_lex_ordering == b.preserves_lex_ordering
        && a.strictly_order_preserving == b.strictly_order_preserving
}

/// The answer kept under a question `is` recognises, or `ask`'s, kept under `question()`
/// unless it is an error. The lock is not held while the bundle answers.
fn remembered<Q, A: Clone>(
    kept: &Mutex<Vec<(Q, A)>>,
    is: impl Fn(&Q) -> bool,
    question: impl FnOnce() -> Q,
    ask: impl FnOnce() -> Result<A>,
) -> Result<A> {
    let lock = || kept.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, answer)) = lock().iter().find(|(q, _)| is(q)) {
        return Ok(answer.clone());
    }
    let answer = ask()?;
    let mut kept = lock();
    if kept.len() == KEPT {
        kept.remove(0);
    }
    kept.push((question(), answer.clone()));
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::logical_expr::sort_properties::SortProperties;

    use super::*;

    #[test]
    fn asks_once_per_distinct_question_and_never_keeps_an_error() {
        let answers = Answers::default();
        let asked = Cell::new(0);
        let int = Arc::new(Field::new("a", DataType::Int64, true));
        let text = Arc::new(Field::new("a", DataType::Utf8, true));
        let ask = |f: &FieldRef| {
            asked.set(asked.get() + 1);
            Ok(Arc::clone(f))
        };
        let five = ScalarValue::Int64(Some(5));
        for (fields, scalar, expected) in [
            (&int, None, 1),
            (&int, None, 1),
            (&int, Some(&five), 2),
            (&text, None, 3),
            (&int, Some(&five), 3),
        ] {
            let arg_fields = [Arc::clone(fields)];
            let scalars = [scalar];
            let args = ReturnFieldArgs {
                arg_fields: &arg_fields,
                scalar_arguments: &scalars,
            };
            let got = answers
                .return_field(args, |_| ask(fields))
                .expect("answers");
            assert_eq!(&got, fields);
            assert_eq!(asked.get(), expected);
        }

        let ordered = ExprProperties::new_unknown().with_order(SortProperties::Singleton);
        let inputs = [ordered.clone()];
        let e = answers.preserves_lex_ordering(&inputs, || {
            Err(datafusion::error::DataFusionError::Internal("no".into()))
        });
        assert!(e.is_err());
        assert!(
            answers
                .preserves_lex_ordering(&inputs, || Ok(true))
                .expect("asked")
        );
        let kept = answers.preserves_lex_ordering(&inputs, || panic!("kept"));
        assert!(kept.expect("kept"));
        let other = [ExprProperties::new_unknown()];
        let asked_again = answers.preserves_lex_ordering(&other, || Ok(false));
        assert!(!asked_again.expect("another question"));
    }
}
