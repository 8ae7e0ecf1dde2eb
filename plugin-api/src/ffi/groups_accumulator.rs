//! `FFI_LeanGroupsAccumulator`: the per-batch path of a groups accumulator, leaner than
//! datafusion-ffi's (plugin ABI 1.5).
//!
//! datafusion-ffi's `FFI_GroupsAccumulator::update_batch` and `merge_batch` take the group
//! indices as a stabby vector: the host copies its `&[usize]` into one element by element and
//! the bundle copies it back into a `Vec`; and every value array crosses with its schema. For
//! `geo_mean(v) ... GROUP BY` over 10 groups those two copies were 1,154 of the bundle's ~1,500
//! extra profile samples, about 8 µs per 8192-row batch. Here the group indices cross as a
//! pointer and a length, valid for the call, and value arrays cross without schemas: their
//! types cross only when they change (the first call, in practice), and the producer keeps them.
//!
//! The lean struct wraps the very accumulator datafusion-ffi made: the host hands the bundle's
//! `FFI_GroupsAccumulator` back to it through [`GROUPS_ACCUMULATOR_SYMBOL`], and the bundle,
//! which made that struct, takes its own accumulator out of it (datafusion-ffi's local round
//! trip). So aggregate functions, their signatures and `create_groups_accumulator` keep
//! datafusion-ffi's path; only the calls per batch change.
//!
//! Plugin ABI 1.10 gives the one call per batch that returns arrays, `convert_to_state` (every
//! batch once DataFusion skips the partial aggregation, with many groups), a way back as lean as
//! the way in: [`FFI_States`], the states as their buffers and their types sent once.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion_ffi::arrow_wrappers::{WrappedArray, WrappedSchema};
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::util::{FFI_Option, FFI_Result};
use stabby::vec::Vec as SVec;

use super::buffers::FFI_ArrayBuffers;
use super::cdata;
use super::planner::ffi_guard;

/// ABI 1.5: `unsafe extern "C" fn(*mut c_void) -> FFI_Result<FFI_LeanGroupsAccumulator>`
/// ([`GroupsAccumulatorFn`]).
pub const GROUPS_ACCUMULATOR_SYMBOL: &str = "df_plugin_groups_accumulator";

/// The type of [`GROUPS_ACCUMULATOR_SYMBOL`]. `accumulator` points to a datafusion-ffi
/// `FFI_GroupsAccumulator`, which the callee moves out (even when it returns an error): the
/// caller must not drop it. It is passed by pointer because datafusion-ffi 55 does not export
/// the type's name (see [`ffi_groups_accumulator`]).
pub type GroupsAccumulatorFn =
    unsafe extern "C" fn(accumulator: *mut c_void) -> FFI_Result<FFI_LeanGroupsAccumulator>;

/// datafusion-ffi's `FFI_GroupsAccumulator`, which `FFI_AggregateUDF::create_groups_accumulator`
/// returns but whose module datafusion-ffi 55 keeps private. Its type is inferred from that
/// field, so a change to the field fails the build instead of the ABI; both sides of the
/// boundary use the same datafusion-ffi version (checked at load).
fn ffi_groups_accumulator()
-> PhantomData<impl From<Box<dyn GroupsAccumulator>> + Into<Box<dyn GroupsAccumulator>>> {
    fn returned_by<A, R>(
        _field: impl Fn(
            &FFI_AggregateUDF,
        ) -> unsafe extern "C" fn(&FFI_AggregateUDF, A) -> FFI_Result<R>,
    ) -> PhantomData<R> {
        PhantomData
    }
    returned_by(|udf| udf.create_groups_accumulator)
}

/// Moves `accumulator` into a datafusion-ffi struct (its original struct, when datafusion-ffi
/// brought it from another image) and hands that to `lean_of`.
fn hand_over<R: From<Box<dyn GroupsAccumulator>>>(
    _: PhantomData<R>,
    accumulator: Box<dyn GroupsAccumulator>,
    lean_of: GroupsAccumulatorFn,
) -> FFI_Result<FFI_LeanGroupsAccumulator> {
    let mut moved = ManuallyDrop::new(R::from(accumulator));
    // SAFETY: `lean_of` takes a pointer to this very type (see `ffi_groups_accumulator`) and
    // moves the struct out; `moved` is never dropped here.
    unsafe { lean_of((&mut *moved as *mut R).cast()) }
}

/// Takes the datafusion-ffi struct at `accumulator` (see [`GroupsAccumulatorFn`]) and the
/// accumulator inside it: the original one when this image made it.
///
/// # Safety
/// `accumulator` points to a live datafusion-ffi `FFI_GroupsAccumulator` nobody else drops.
unsafe fn take_over<R: Into<Box<dyn GroupsAccumulator>>>(
    _: PhantomData<R>,
    accumulator: *mut c_void,
) -> Box<dyn GroupsAccumulator> {
    // SAFETY: the caller's contract; `R` is that type.
    unsafe { std::ptr::read(accumulator.cast::<R>()) }.into()
}

/// [`EmitTo`] across the boundary.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub enum FFI_EmitTo {
    All,
    First(usize),
}

impl From<EmitTo> for FFI_EmitTo {
    fn from(e: EmitTo) -> Self {
        match e {
            EmitTo::All => Self::All,
            EmitTo::First(n) => Self::First(n),
        }
    }
}

impl From<FFI_EmitTo> for EmitTo {
    fn from(e: FFI_EmitTo) -> Self {
        match e {
            FFI_EmitTo::All => Self::All,
            FFI_EmitTo::First(n) => Self::First(n),
        }
    }
}

/// Arrays crossing into the producer without schemas: both sides know their types. `types`
/// are sent when they differ from what the producer already knows for that kind of call.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_Values {
    pub arrays: SVec<FFI_ArrowArray>,
    pub types: FFI_Option<SVec<WrappedSchema>>,
}

/// The types of `arrays` to send when they are not `known`: as schemas to cross, and as the
/// types the sender then knows the receiver holds.
type TypesToSend = (FFI_Option<SVec<WrappedSchema>>, Option<Vec<DataType>>);

fn types_to_send(arrays: &[ArrayRef], known: &[DataType]) -> Result<TypesToSend> {
    let same =
        arrays.len() == known.len() && arrays.iter().zip(known).all(|(a, t)| a.data_type() == t);
    if same {
        return Ok((FFI_Option::None, None));
    }
    let types = arrays
        .iter()
        .map(|a| a.data_type().clone())
        .collect::<Vec<_>>();
    let schemas = types
        .iter()
        .map(|t| Ok(WrappedSchema(FFI_ArrowSchema::try_from(t)?)))
        .collect::<Result<SVec<_>>>()?;
    Ok((FFI_Option::Some(schemas), Some(types)))
}

impl FFI_Values {
    /// Exports `arrays`, and their types unless they are `known`; also returns the types sent.
    fn export(arrays: &[ArrayRef], known: &[DataType]) -> Result<(Self, Option<Vec<DataType>>)> {
        let (types, sent) = types_to_send(arrays, known)?;
        let arrays = arrays.iter().map(cdata::export).collect();
        Ok((Self { arrays, types }, sent))
    }

    /// Imports the arrays; types that were sent replace `known` first.
    ///
    /// # Safety
    /// Each array is a valid C data interface array of its type.
    unsafe fn import_keeping(self, known: &mut Vec<DataType>) -> Result<Vec<ArrayRef>> {
        let Self { arrays, types } = self;
        if let Some(sent) = imported_types(types)? {
            *known = sent;
        }
        // SAFETY: the caller's contract.
        unsafe { import_arrays(arrays, known) }
    }

    /// Imports the arrays with the types sent, or `known`, which it leaves as they are.
    ///
    /// # Safety
    /// Each array is a valid C data interface array of its type.
    unsafe fn import_with(self, known: &[DataType]) -> Result<Vec<ArrayRef>> {
        let Self { arrays, types } = self;
        let sent = imported_types(types)?;
        // SAFETY: the caller's contract.
        unsafe { import_arrays(arrays, sent.as_deref().unwrap_or(known)) }
    }
}

fn imported_types(types: FFI_Option<SVec<WrappedSchema>>) -> Result<Option<Vec<DataType>>> {
    let Some(schemas) = types.into_option() else {
        return Ok(None);
    };
    let types = schemas
        .iter()
        .map(|s| DataType::try_from(&s.0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(types))
}

/// # Safety
/// Each array is a valid C data interface array of the type at its position in `types`.
unsafe fn import_arrays(arrays: SVec<FFI_ArrowArray>, types: &[DataType]) -> Result<Vec<ArrayRef>> {
    // SAFETY: the caller's contract.
    import_each(arrays, types, |a, t| unsafe { cdata::import(a, t) })
}

/// Imports each of `arrays` with `import`, as the type at its position in `types`; what it
/// does not import is released with `arrays`.
fn import_each<A>(
    arrays: SVec<A>,
    types: &[DataType],
    mut import: impl FnMut(A, &DataType) -> Result<ArrayRef>,
) -> Result<Vec<ArrayRef>> {
    if arrays.len() != types.len() {
        return Err(DataFusionError::Internal(format!(
            "a groups accumulator was sent {} arrays and knows the types of {}",
            arrays.len(),
            types.len()
        )));
    }
    arrays
        .into_iter()
        .zip(types)
        .map(|(a, t)| import(a, t))
        .collect()
}

/// States crossing back to the consumer of `convert_to_state` (plugin ABI 1.10): each array as
/// its buffers ([`FFI_ArrayBuffers`], so a fixed-width state built from a `Vec` is handed over
/// to a host that lent its allocator), and their types only when the consumer does not know
/// them yet or they changed.
///
/// With partial aggregation skipped (many groups), DataFusion calls `convert_to_state` on every
/// input batch. As datafusion-ffi's `WrappedArray`s, `geo_mean`'s two states crossed with two
/// schemas built, parsed and dropped per batch, and through arrow-rs's generic export and
/// import: of the bundle side's ~290 extra profile samples a run on the many-groups bench
/// query, ~30 were the schemas alone (`split-perf`, 22 runs a side).
#[repr(C)]
#[derive(Debug)]
pub struct FFI_States {
    pub arrays: SVec<FFI_ArrayBuffers>,
    pub types: FFI_Option<SVec<WrappedSchema>>,
}

impl FFI_States {
    /// Exports `arrays`, which the producer gives up, and their types unless they are `known`;
    /// also returns the types sent.
    fn export(arrays: Vec<ArrayRef>, known: &[DataType]) -> Result<(Self, Option<Vec<DataType>>)> {
        let (types, sent) = types_to_send(&arrays, known)?;
        let arrays = arrays
            .into_iter()
            .map(FFI_ArrayBuffers::from_owned)
            .collect();
        Ok((Self { arrays, types }, sent))
    }

    /// Imports the arrays; types that were sent replace `known` first. What it does not
    /// import, it releases.
    ///
    /// # Safety
    /// Each array was exported by [`FFI_ArrayBuffers`] (or to its contract) from an array of
    /// its type.
    unsafe fn import_keeping(self, known: &mut Vec<DataType>) -> Result<Vec<ArrayRef>> {
        let Self { arrays, types } = self;
        if let Some(sent) = imported_types(types)? {
            *known = sent;
        }
        // SAFETY: the caller's contract.
        import_each(arrays, known, |a, t| unsafe { a.import(t) })
    }
}

fn export_filter(filter: Option<&BooleanArray>) -> FFI_Option<FFI_ArrowArray> {
    filter
        .map(|f| cdata::export(&(Arc::new(f.clone()) as ArrayRef)))
        .into()
}

/// # Safety
/// `filter` is a valid C data interface array of booleans.
unsafe fn import_filter(filter: FFI_Option<FFI_ArrowArray>) -> Result<Option<BooleanArray>> {
    filter
        .into_option()
        // SAFETY: the caller's contract.
        .map(|f| {
            let filter = unsafe { cdata::import(f, &DataType::Boolean) }?;
            filter.as_boolean_opt().cloned().ok_or_else(|| {
                DataFusionError::Internal("a filter imported as another type".into())
            })
        })
        .transpose()
}

/// # Safety
/// `ptr` points to `len` group indices that live for `'a`, or `len` is 0.
unsafe fn group_indices<'a>(ptr: *const usize, len: usize) -> &'a [usize] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

fn export_arrays(arrays: Vec<ArrayRef>) -> Result<SVec<WrappedArray>> {
    arrays
        .iter()
        .map(|a| Ok(WrappedArray::try_from(a)?))
        .collect()
}

fn import_wrapped(arrays: SVec<WrappedArray>) -> Result<Vec<ArrayRef>> {
    arrays
        .into_iter()
        .map(|a| Ok(ArrayRef::try_from(a)?))
        .collect()
}

fn returned<T>(r: FFI_Result<T>) -> Result<T> {
    match r {
        FFI_Result::Ok(v) => Ok(v),
        FFI_Result::Err(e) => Err(DataFusionError::Ffi(e.to_string())),
    }
}

/// The plugin ABI minor whose lean accumulators have
/// [`FFI_LeanGroupsAccumulator::convert_to_state_buffers`].
pub const CONVERT_TO_STATE_BUFFERS_MINOR: u16 = 10;

/// A stable struct for a groups accumulator's calls. For each field, see the method of the same
/// name of [`GroupsAccumulator`]. Group indices cross as a pointer and a length, valid for the
/// call; what the producer returns once per emit (`evaluate`, `state`) crosses with its schema,
/// and what it returns per batch (`convert_to_state_buffers`) as [`FFI_States`].
///
/// Fields after `library_marker_id` were appended by later minors: the consumer reads one only
/// from a producer of that minor or later (see [`ForeignLeanGroupsAccumulator::new`]).
#[repr(C)]
#[derive(Debug)]
pub struct FFI_LeanGroupsAccumulator {
    pub update_batch: unsafe extern "C" fn(
        accumulator: &mut Self,
        values: FFI_Values,
        group_indices: *const usize,
        num_indices: usize,
        opt_filter: FFI_Option<FFI_ArrowArray>,
        total_num_groups: usize,
    ) -> FFI_Result<()>,
    pub evaluate: unsafe extern "C" fn(
        accumulator: &mut Self,
        emit_to: FFI_EmitTo,
    ) -> FFI_Result<WrappedArray>,
    pub state: unsafe extern "C" fn(
        accumulator: &mut Self,
        emit_to: FFI_EmitTo,
    ) -> FFI_Result<SVec<WrappedArray>>,
    pub merge_batch: unsafe extern "C" fn(
        accumulator: &mut Self,
        states: FFI_Values,
        group_indices: *const usize,
        num_indices: usize,
        total_num_groups: usize,
    ) -> FFI_Result<()>,
    /// Takes values of `update_batch`'s types (sent again if they differ) and keeps nothing.
    /// The states cross with their schemas (plugin ABI 1.5 to 1.9; see
    /// [`Self::convert_to_state_buffers`]).
    pub convert_to_state: unsafe extern "C" fn(
        accumulator: &Self,
        values: FFI_Values,
        opt_filter: FFI_Option<FFI_ArrowArray>,
    ) -> FFI_Result<SVec<WrappedArray>>,
    pub size: unsafe extern "C" fn(accumulator: &Self) -> usize,
    pub release: unsafe extern "C" fn(accumulator: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
    /// `convert_to_state`, with the states crossing back as [`FFI_States`]: their types are
    /// sent when `types_known` is false (the consumer holds none) or when they differ from the
    /// ones the producer sent last. Plugin ABI 1.10 ([`CONVERT_TO_STATE_BUFFERS_MINOR`]).
    pub convert_to_state_buffers: unsafe extern "C" fn(
        accumulator: &Self,
        values: FFI_Values,
        opt_filter: FFI_Option<FFI_ArrowArray>,
        types_known: bool,
    ) -> FFI_Result<FFI_States>,
}

unsafe impl Send for FFI_LeanGroupsAccumulator {}
unsafe impl Sync for FFI_LeanGroupsAccumulator {}

struct LeanGroupsPrivateData {
    accumulator: Box<dyn GroupsAccumulator>,
    /// The types of `update_batch`'s values, as last sent.
    value_types: Vec<DataType>,
    /// The types of `merge_batch`'s states, as last sent.
    state_types: Vec<DataType>,
    /// The types of `convert_to_state_buffers`' states, as last sent. `convert_to_state` takes
    /// `&self`; the consumer makes one call at a time, so the lock is never contended.
    converted_types: Mutex<Vec<DataType>>,
}

/// Who a panic caught at the boundary is reported for (the toolkit's own guard, inside, names
/// the function).
fn who() -> String {
    "a bundle's groups accumulator".to_owned()
}

impl FFI_LeanGroupsAccumulator {
    /// Exports `accumulator`.
    pub fn new(accumulator: Box<dyn GroupsAccumulator>) -> Self {
        let data = LeanGroupsPrivateData {
            accumulator,
            value_types: Vec::new(),
            state_types: Vec::new(),
            converted_types: Mutex::default(),
        };
        Self {
            update_batch: update_batch_fn_wrapper,
            evaluate: evaluate_fn_wrapper,
            state: state_fn_wrapper,
            merge_batch: merge_batch_fn_wrapper,
            convert_to_state: convert_to_state_fn_wrapper,
            size: size_fn_wrapper,
            release: release_fn_wrapper,
            private_data: Box::into_raw(Box::new(data)) as *mut c_void,
            library_marker_id: super::library_marker_id,
            convert_to_state_buffers: convert_to_state_buffers_fn_wrapper,
        }
    }

    fn data(&self) -> &LeanGroupsPrivateData {
        // SAFETY: `private_data` is the box `new` made; only this image reads it.
        unsafe { &*(self.private_data as *const LeanGroupsPrivateData) }
    }

    fn data_mut(&mut self) -> &mut LeanGroupsPrivateData {
        // SAFETY: as in `data`; `&mut self` makes the access exclusive.
        unsafe { &mut *(self.private_data as *mut LeanGroupsPrivateData) }
    }
}

unsafe extern "C" fn update_batch_fn_wrapper(
    accumulator: &mut FFI_LeanGroupsAccumulator,
    values: FFI_Values,
    indices: *const usize,
    num_indices: usize,
    opt_filter: FFI_Option<FFI_ArrowArray>,
    total_num_groups: usize,
) -> FFI_Result<()> {
    let data = accumulator.data_mut();
    ffi_guard(who, || {
        // SAFETY: the consumer exported arrays of the types sent or known, a boolean filter,
        // and indices that live for the call.
        let (values, filter, indices) = unsafe {
            (
                values.import_keeping(&mut data.value_types)?,
                import_filter(opt_filter)?,
                group_indices(indices, num_indices),
            )
        };
        data.accumulator
            .update_batch(&values, indices, filter.as_ref(), total_num_groups)
    })
}

unsafe extern "C" fn evaluate_fn_wrapper(
    accumulator: &mut FFI_LeanGroupsAccumulator,
    emit_to: FFI_EmitTo,
) -> FFI_Result<WrappedArray> {
    let data = accumulator.data_mut();
    ffi_guard(who, || {
        let array = data.accumulator.evaluate(emit_to.into())?;
        Ok(WrappedArray::try_from(&array)?)
    })
}

unsafe extern "C" fn state_fn_wrapper(
    accumulator: &mut FFI_LeanGroupsAccumulator,
    emit_to: FFI_EmitTo,
) -> FFI_Result<SVec<WrappedArray>> {
    let data = accumulator.data_mut();
    ffi_guard(who, || {
        export_arrays(data.accumulator.state(emit_to.into())?)
    })
}

unsafe extern "C" fn merge_batch_fn_wrapper(
    accumulator: &mut FFI_LeanGroupsAccumulator,
    states: FFI_Values,
    indices: *const usize,
    num_indices: usize,
    total_num_groups: usize,
) -> FFI_Result<()> {
    let data = accumulator.data_mut();
    ffi_guard(who, || {
        // SAFETY: as in `update_batch_fn_wrapper`.
        let (states, indices) = unsafe {
            (
                states.import_keeping(&mut data.state_types)?,
                group_indices(indices, num_indices),
            )
        };
        data.accumulator
            .merge_batch(&states, indices, total_num_groups)
    })
}

unsafe extern "C" fn convert_to_state_fn_wrapper(
    accumulator: &FFI_LeanGroupsAccumulator,
    values: FFI_Values,
    opt_filter: FFI_Option<FFI_ArrowArray>,
) -> FFI_Result<SVec<WrappedArray>> {
    let data = accumulator.data();
    ffi_guard(who, || {
        // SAFETY: as in `update_batch_fn_wrapper`.
        let (values, filter) = unsafe {
            (
                values.import_with(&data.value_types)?,
                import_filter(opt_filter)?,
            )
        };
        export_arrays(
            data.accumulator
                .convert_to_state(&values, filter.as_ref())?,
        )
    })
}

unsafe extern "C" fn convert_to_state_buffers_fn_wrapper(
    accumulator: &FFI_LeanGroupsAccumulator,
    values: FFI_Values,
    opt_filter: FFI_Option<FFI_ArrowArray>,
    types_known: bool,
) -> FFI_Result<FFI_States> {
    let data = accumulator.data();
    ffi_guard(who, || {
        // SAFETY: as in `update_batch_fn_wrapper`.
        let (values, filter) = unsafe {
            (
                values.import_with(&data.value_types)?,
                import_filter(opt_filter)?,
            )
        };
        let states = data
            .accumulator
            .convert_to_state(&values, filter.as_ref())?;
        let mut sent_last = lock(&data.converted_types);
        let known: &[DataType] = if types_known { &sent_last } else { &[] };
        let (states, sent) = FFI_States::export(states, known)?;
        if let Some(sent) = sent {
            *sent_last = sent;
        }
        Ok(states)
    })
}

/// The lock's value even after a panic while it was held: the types in it are whole either way.
fn lock(types: &Mutex<Vec<DataType>>) -> MutexGuard<'_, Vec<DataType>> {
    types.lock().unwrap_or_else(|p| p.into_inner())
}

unsafe extern "C" fn size_fn_wrapper(accumulator: &FFI_LeanGroupsAccumulator) -> usize {
    let data = accumulator.data();
    // A panic here has no error to become: report nothing rather than unwind into the host.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| data.accumulator.size())).unwrap_or(0)
}

unsafe extern "C" fn release_fn_wrapper(accumulator: &mut FFI_LeanGroupsAccumulator) {
    if accumulator.private_data.is_null() {
        return;
    }
    // SAFETY: the box `new` made, released once (the pointer is cleared).
    let data = unsafe { Box::from_raw(accumulator.private_data as *mut LeanGroupsPrivateData) };
    accumulator.private_data = std::ptr::null_mut();
    // Dropping runs the bundle's code: keep a panic on this side.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(data)));
}

impl Drop for FFI_LeanGroupsAccumulator {
    fn drop(&mut self) {
        // SAFETY: `release` belongs to the image that made the struct.
        unsafe { (self.release)(self) }
    }
}

/// The consumer side of an [`FFI_LeanGroupsAccumulator`]. It remembers which types it sent, so
/// each kind of call sends them again only when they change, and which types of
/// `convert_to_state`'s states it was sent.
#[derive(Debug)]
pub struct ForeignLeanGroupsAccumulator {
    accumulator: FFI_LeanGroupsAccumulator,
    /// The producer's plugin ABI minor: which appended fields its struct has.
    abi_minor: u16,
    value_types: Vec<DataType>,
    state_types: Vec<DataType>,
    /// The types of `convert_to_state`'s states, as last received (ABI 1.10); emptied when a
    /// call fails, so that the next one asks for them again.
    converted_types: Mutex<Vec<DataType>>,
}

impl ForeignLeanGroupsAccumulator {
    /// Hands `accumulator`, which a bundle's aggregate function made through datafusion-ffi,
    /// to that bundle's [`GROUPS_ACCUMULATOR_SYMBOL`] entry point `lean_of`, and wraps the lean
    /// struct it returns. The accumulator is consumed either way. `abi_minor` is the bundle's
    /// plugin ABI minor (5 or later): only fields of that minor are read from the struct.
    pub fn new(
        lean_of: GroupsAccumulatorFn,
        accumulator: Box<dyn GroupsAccumulator>,
        abi_minor: u16,
    ) -> Result<Self> {
        let lean = returned(hand_over(ffi_groups_accumulator(), accumulator, lean_of))?;
        Ok(Self {
            accumulator: lean,
            abi_minor,
            value_types: Vec::new(),
            state_types: Vec::new(),
            converted_types: Mutex::default(),
        })
    }
}

impl GroupsAccumulator for ForeignLeanGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let (values, sent) = FFI_Values::export(values, &self.value_types)?;
        // SAFETY: `update_batch` belongs to the image that made the struct; the indices live
        // for the call.
        returned(unsafe {
            (self.accumulator.update_batch)(
                &mut self.accumulator,
                values,
                group_indices.as_ptr(),
                group_indices.len(),
                export_filter(opt_filter),
                total_num_groups,
            )
        })?;
        // Only now does the producer surely know them.
        if let Some(sent) = sent {
            self.value_types = sent;
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        // SAFETY: `evaluate` belongs to the image that made the struct.
        let array = returned(unsafe {
            (self.accumulator.evaluate)(&mut self.accumulator, emit_to.into())
        })?;
        Ok(ArrayRef::try_from(array)?)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        // SAFETY: `state` belongs to the image that made the struct.
        import_wrapped(returned(unsafe {
            (self.accumulator.state)(&mut self.accumulator, emit_to.into())
        })?)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let (states, sent) = FFI_Values::export(values, &self.state_types)?;
        // SAFETY: as in `update_batch`.
        returned(unsafe {
            (self.accumulator.merge_batch)(
                &mut self.accumulator,
                states,
                group_indices.as_ptr(),
                group_indices.len(),
                total_num_groups,
            )
        })?;
        if let Some(sent) = sent {
            self.state_types = sent;
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let (values, _) = FFI_Values::export(values, &self.value_types)?;
        if self.abi_minor < CONVERT_TO_STATE_BUFFERS_MINOR {
            // SAFETY: `convert_to_state` belongs to the image that made the struct.
            return import_wrapped(returned(unsafe {
                (self.accumulator.convert_to_state)(
                    &self.accumulator,
                    values,
                    export_filter(opt_filter),
                )
            })?);
        }
        // Held for the whole call: what the producer sent last is what this holds.
        let mut known = lock(&self.converted_types);
        // SAFETY: the field belongs to the image that made the struct, of ABI 1.10 or later.
        let states = unsafe {
            (self.accumulator.convert_to_state_buffers)(
                &self.accumulator,
                values,
                export_filter(opt_filter),
                !known.is_empty(),
            )
        };
        // SAFETY: the producer exported the states with `FFI_States::export`.
        let imported = returned(states).and_then(|s| unsafe { s.import_keeping(&mut known) });
        if imported.is_err() {
            known.clear();
        }
        imported
    }

    fn size(&self) -> usize {
        // SAFETY: `size` belongs to the image that made the struct.
        unsafe { (self.accumulator.size)(&self.accumulator) }
    }
}

/// Used by [`crate::export_bundle!`]: the lean path of a groups accumulator this bundle's
/// aggregate function made.
///
/// # Safety
/// As for [`GroupsAccumulatorFn`]: `accumulator` points to a datafusion-ffi
/// `FFI_GroupsAccumulator`, which this call moves out.
#[doc(hidden)]
pub unsafe fn export_groups_accumulator(
    accumulator: *mut c_void,
) -> FFI_Result<FFI_LeanGroupsAccumulator> {
    if accumulator.is_null() {
        return FFI_Result::Err("no groups accumulator was handed over".into());
    }
    ffi_guard(who, || {
        // SAFETY: the caller's contract.
        let accumulator = unsafe { take_over(ffi_groups_accumulator(), accumulator) };
        Ok(FFI_LeanGroupsAccumulator::new(accumulator))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use datafusion::arrow::array::{AsArray, Int32Array, Int64Array};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::Int64Type;

    use super::*;
    use crate::record::ABI_MINOR;

    /// Sums Int64 values (or Int32, widened) per group; its state is the sums. It records the
    /// types it was given, fails on a value of 13 and panics on a value of 666.
    #[derive(Default)]
    struct SumGroups {
        sums: Vec<i64>,
        seen: Arc<Mutex<Vec<DataType>>>,
    }

    fn values_of(array: &ArrayRef) -> Result<Vec<Option<i64>>> {
        Ok(match array.data_type() {
            DataType::Int64 => array.as_primitive::<Int64Type>().iter().collect(),
            DataType::Int32 => array
                .as_any()
                .downcast_ref::<Int32Array>()
                .expect("Int32")
                .iter()
                .map(|v| v.map(i64::from))
                .collect(),
            other => {
                return Err(DataFusionError::Execution(format!("cannot sum {other}")));
            }
        })
    }

    impl SumGroups {
        fn add(
            &mut self,
            array: &ArrayRef,
            groups: &[usize],
            filter: Option<&BooleanArray>,
            n: usize,
        ) -> Result<()> {
            self.seen
                .lock()
                .expect("lock")
                .push(array.data_type().clone());
            self.sums.resize(n, 0);
            for (i, (v, &g)) in values_of(array)?.into_iter().zip(groups).enumerate() {
                if filter.is_some_and(|f| !f.value(i)) {
                    continue;
                }
                match v {
                    Some(13) => return Err(DataFusionError::Execution("13 is unlucky".into())),
                    Some(666) => panic!("asked to panic"),
                    Some(v) => self.sums[g] += v,
                    None => {}
                }
            }
            Ok(())
        }
    }

    impl GroupsAccumulator for SumGroups {
        fn update_batch(
            &mut self,
            values: &[ArrayRef],
            group_indices: &[usize],
            opt_filter: Option<&BooleanArray>,
            total_num_groups: usize,
        ) -> Result<()> {
            self.add(&values[0], group_indices, opt_filter, total_num_groups)
        }
        fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
            Ok(Arc::new(Int64Array::from(
                emit_to.take_needed(&mut self.sums),
            )))
        }
        fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
            Ok(vec![self.evaluate(emit_to)?])
        }
        fn merge_batch(
            &mut self,
            values: &[ArrayRef],
            group_indices: &[usize],
            total_num_groups: usize,
        ) -> Result<()> {
            self.add(&values[0], group_indices, None, total_num_groups)
        }
        /// Its states keep the values' type, so that they change when the values' do.
        fn convert_to_state(
            &self,
            values: &[ArrayRef],
            opt_filter: Option<&BooleanArray>,
        ) -> Result<Vec<ArrayRef>> {
            let mut sums = Vec::with_capacity(values[0].len());
            for (i, v) in values_of(&values[0])?.into_iter().enumerate() {
                sums.push(match v {
                    _ if opt_filter.is_some_and(|f| !f.value(i)) => Some(0),
                    Some(13) => return Err(DataFusionError::Execution("13 is unlucky".into())),
                    Some(666) => panic!("asked to panic"),
                    v => v,
                });
            }
            let sums: ArrayRef = Arc::new(Int64Array::from(sums));
            Ok(vec![cast(&sums, values[0].data_type())?])
        }
        fn size(&self) -> usize {
            self.sums.capacity() * size_of::<i64>() + 1
        }
    }

    unsafe extern "C" fn lean_of(
        accumulator: *mut c_void,
    ) -> FFI_Result<FFI_LeanGroupsAccumulator> {
        // SAFETY: the test passes what a host passes.
        unsafe { export_groups_accumulator(accumulator) }
    }

    /// The accumulator natively and through the lean path of a producer of this plugin ABI
    /// minor, with a log of the types the lean one's accumulator was given.
    fn twins_of(
        abi_minor: u16,
    ) -> (
        SumGroups,
        ForeignLeanGroupsAccumulator,
        Arc<Mutex<Vec<DataType>>>,
    ) {
        let seen = Arc::default();
        let lean = SumGroups {
            seen: Arc::clone(&seen),
            ..Default::default()
        };
        let lean =
            ForeignLeanGroupsAccumulator::new(lean_of, Box::new(lean), abi_minor).expect("lean");
        (SumGroups::default(), lean, seen)
    }

    fn twins() -> (
        SumGroups,
        ForeignLeanGroupsAccumulator,
        Arc<Mutex<Vec<DataType>>>,
    ) {
        twins_of(ABI_MINOR)
    }

    /// The minors whose consumers take different paths: the first lean one, the last before
    /// `convert_to_state_buffers`, and this one.
    const MINORS: [u16; 3] = [5, CONVERT_TO_STATE_BUFFERS_MINOR - 1, ABI_MINOR];

    fn int64(v: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(v.to_vec()))
    }

    #[test]
    fn every_call_gives_what_the_accumulator_gives_natively() -> Result<()> {
        for minor in MINORS {
            every_call_of(minor)?;
        }
        Ok(())
    }

    fn every_call_of(minor: u16) -> Result<()> {
        let (mut native, mut lean, _) = twins_of(minor);
        let accs: [&mut dyn GroupsAccumulator; 2] = [&mut native, &mut lean];
        let mut out = Vec::new();
        for acc in accs {
            let filter = BooleanArray::from(vec![true, false, true, true]);
            acc.update_batch(
                &[int64(&[Some(1), Some(2), None, Some(4)])],
                &[0, 1, 1, 2],
                Some(&filter),
                3,
            )?;
            acc.update_batch(&[int64(&[Some(10), Some(20)])], &[2, 0], None, 3)?;
            acc.update_batch(&[int64(&[])], &[], None, 3)?;
            let first = acc.state(EmitTo::First(1))?;
            acc.merge_batch(&[int64(&[Some(100), Some(200)])], &[0, 1], 2)?;
            let converted = acc.convert_to_state(
                &[int64(&[Some(5), Some(6)])],
                Some(&BooleanArray::from(vec![false, true])),
            )?;
            assert!(acc.size() > 0);
            out.push((first, converted, acc.evaluate(EmitTo::All)?));
        }
        assert_eq!(
            out[0].0[0].as_ref(),
            &Int64Array::from(vec![21]) as &dyn Array
        );
        assert_eq!(
            format!("{:?}", out[0]),
            format!("{:?}", out[1]),
            "as ABI 1.{minor}"
        );
        Ok(())
    }

    /// Converts each of `batches` natively and through `lean`; the two must agree.
    fn converts_alike(lean: &ForeignLeanGroupsAccumulator, batches: &[ArrayRef]) -> Result<()> {
        let native = SumGroups::default();
        for values in batches {
            let values = std::slice::from_ref(values);
            let (want, got) = (
                native.convert_to_state(values, None)?,
                lean.convert_to_state(values, None)?,
            );
            assert_eq!(format!("{want:?}"), format!("{got:?}"));
            assert_eq!(got[0].data_type(), values[0].data_type());
        }
        Ok(())
    }

    #[test]
    fn converted_states_cross_back_with_their_types_when_they_change() -> Result<()> {
        let (_, known) = FFI_States::export(vec![int64(&[Some(1)])], &[])?;
        assert_eq!(
            known,
            Some(vec![DataType::Int64]),
            "the first call sends them"
        );
        let (states, sent) = FFI_States::export(vec![int64(&[Some(1)])], &[DataType::Int64])?;
        assert!(
            sent.is_none() && states.types.into_option().is_none(),
            "known types stay home"
        );

        let int32: ArrayRef = Arc::new(Int32Array::from(vec![Some(3), None]));
        for minor in MINORS {
            let (_, lean, _) = twins_of(minor);
            let int64 = int64(&[Some(1), None, Some(2)]);
            converts_alike(&lean, &[int64.clone(), int64.clone(), int32.clone(), int64])?;
            // Only a consumer of a 1.10 producer took the new call, and learnt the types.
            let learnt = lock(&lean.converted_types).clone();
            if minor >= CONVERT_TO_STATE_BUFFERS_MINOR {
                assert_eq!(learnt, [DataType::Int64], "as ABI 1.{minor}");
            } else {
                assert!(learnt.is_empty(), "as ABI 1.{minor}: {learnt:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn a_failed_conversion_leaves_the_states_types_to_be_sent_again() -> Result<()> {
        let (_, lean, _) = twins();
        converts_alike(&lean, &[int64(&[Some(1)])])?;
        for (value, error) in [
            (13, "FFI error: Execution error: 13 is unlucky"),
            (
                666,
                "a bundle's groups accumulator panicked: asked to panic",
            ),
        ] {
            let e = lean
                .convert_to_state(&[int64(&[Some(value)])], None)
                .unwrap_err();
            assert!(e.to_string().contains(error), "{e}");
            assert!(lock(&lean.converted_types).is_empty());
            converts_alike(&lean, &[int64(&[Some(2)]), int64(&[Some(3)])])?;
        }
        // States of types the consumer never learnt are refused, not misread.
        let (_, blind, _) = twins();
        let (states, _) = FFI_States::export(vec![int64(&[Some(1)])], &[DataType::Int64])?;
        // SAFETY: exported just above.
        let e = unsafe { states.import_keeping(&mut lock(&blind.converted_types)) }.unwrap_err();
        assert!(
            e.to_string()
                .contains("sent 1 arrays and knows the types of 0"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn types_cross_when_they_change() -> Result<()> {
        let (_, known) = FFI_Values::export(&[int64(&[Some(1)])], &[])?;
        assert_eq!(
            known,
            Some(vec![DataType::Int64]),
            "the first call sends them"
        );
        let (values, sent) = FFI_Values::export(&[int64(&[Some(1)])], &[DataType::Int64])?;
        assert!(
            sent.is_none() && values.types.into_option().is_none(),
            "known types stay home"
        );

        let (_, mut lean, seen) = twins();
        lean.update_batch(&[int64(&[Some(1)])], &[0], None, 1)?;
        lean.update_batch(&[int64(&[Some(2)])], &[0], None, 1)?;
        lean.update_batch(&[Arc::new(Int32Array::from(vec![3]))], &[0], None, 1)?;
        lean.merge_batch(&[int64(&[Some(4)])], &[0], 1)?;
        assert_eq!(
            *seen.lock().expect("lock"),
            [
                DataType::Int64,
                DataType::Int64,
                DataType::Int32,
                DataType::Int64
            ]
        );
        assert_eq!(
            lean.evaluate(EmitTo::All)?.as_ref(),
            &Int64Array::from(vec![10]) as &dyn Array
        );
        Ok(())
    }

    #[test]
    fn errors_and_panics_come_back_as_errors() -> Result<()> {
        let (_, mut lean, _) = twins();
        let e = lean
            .update_batch(&[int64(&[Some(13)])], &[0], None, 1)
            .unwrap_err();
        assert_eq!(e.to_string(), "FFI error: Execution error: 13 is unlucky");
        let e = lean
            .merge_batch(&[int64(&[Some(666)])], &[0], 1)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("a bundle's groups accumulator panicked: asked to panic"),
            "{e}"
        );
        // A failed call leaves the accumulator usable, and its types known or sent again.
        lean.update_batch(&[int64(&[Some(1)])], &[0], None, 1)?;
        lean.merge_batch(&[int64(&[Some(2)])], &[0], 1)?;
        assert_eq!(
            lean.evaluate(EmitTo::All)?.as_ref(),
            &Int64Array::from(vec![3]) as &dyn Array
        );
        Ok(())
    }

    #[test]
    fn nothing_handed_over_is_an_error() {
        // SAFETY: null is the one pointer the entry point must refuse by itself.
        let r = unsafe { export_groups_accumulator(std::ptr::null_mut()) };
        assert!(matches!(r, FFI_Result::Err(_)));
    }
}
