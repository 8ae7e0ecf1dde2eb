//! `FFI_ScalarKernel`: the per-batch path of a scalar function, leaner than datafusion-ffi's
//! (plugin ABI 1.2).
//!
//! datafusion-ffi's `FFI_ScalarUDF::invoke_with_args` turns the whole `ConfigOptions` into a
//! string map and back, and exports every argument's schema, on every batch, and expands
//! scalar arguments to full arrays (ffi-brief §1.1). For a cheap function that is most of the
//! time: `time_bucket(ts, 300)` ran at a quarter of its native speed. A kernel splits the call
//! in two:
//!
//! - [`FFI_ScalarKernel::bind`], once per (configuration, argument fields, return field): the
//!   bundle imports the fields and the configuration and keeps them in an [`FFI_ScalarCall`];
//! - [`FFI_ScalarCall::invoke`], per batch: only the argument arrays cross (Arrow C data
//!   interface, no schema: both sides know the types from `bind`), and a scalar argument
//!   crosses as a one-row array flagged as scalar, so the function sees a
//!   `ColumnarValue::Scalar` as it would natively.
//!
//! A bundle exports one kernel per scalar function through [`SCALAR_KERNEL_SYMBOL`]; the host
//! wraps it in a [`ForeignScalarKernel`], which caches the bound calls, and keeps using
//! datafusion-ffi's struct for everything else (name, signature, return field, coercion).
//!
//! How a value crosses in a call is the kernel's type parameter ([`KernelValue`]): ABI 1.2
//! sends arrays through the Arrow C data interface ([`FFI_ColumnarArg`]); ABI 1.6 sends
//! fixed-width arrays as their buffers ([`FFI_ColumnarBuffers`], see [`super::buffers`]),
//! through a second symbol, [`SCALAR_KERNEL_BUFFERS_SYMBOL`]. The structs have the same layout
//! either way, so a 1.2–1.5 bundle keeps working. From ABI 1.13 the host lends a call's
//! arguments instead of giving them ([`FFI_ScalarCall::invoke_lent`]): the bundle takes only
//! what outlives the call. From ABI 1.14 a call to a function written over values
//! ([`crate::toolkit::values::ValuesUDF`]) lends the arguments' values and an output buffer,
//! and no array is built in the bundle ([`FFI_ScalarCall::invoke_values`], see
//! [`super::values`]).

use std::ffi::c_void;
use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::alloc::Allocation;
use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl};
use datafusion_ffi::arrow_wrappers::WrappedSchema;
use datafusion_ffi::config::FFI_ConfigOptions;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::util::{FFI_Option, FFI_Result};
use smallvec::SmallVec;
use stabby::vec::Vec as SVec;

use super::bound::BoundCache;
use super::buffers::{self, FFI_ArrayBuffers, LentOwner};
use super::cdata;
use super::planner::ffi_guard;
use super::values::{self, FFI_Validity, FFI_Values, INVOKE_VALUES_MINOR, ValuesKernel};

/// ABI 1.2: `extern "C" fn(&FFI_ScalarUDF) -> FFI_Option<FFI_ScalarKernel>`. The host passes
/// back each scalar function the bundle's `init` returned; the bundle answers with the kernel
/// of that very function (`None` for a struct it did not make).
pub const SCALAR_KERNEL_SYMBOL: &str = "df_plugin_scalar_kernel";

/// ABI 1.6: the same as [`SCALAR_KERNEL_SYMBOL`] with fixed-width arrays crossing as their
/// buffers: `extern "C" fn(&FFI_ScalarUDF) -> FFI_Option<FFI_ScalarKernel<FFI_ColumnarBuffers>>`.
pub const SCALAR_KERNEL_BUFFERS_SYMBOL: &str = "df_plugin_scalar_kernel_buffers";

/// The type of [`SCALAR_KERNEL_SYMBOL`] (and, with [`FFI_ColumnarBuffers`], of
/// [`SCALAR_KERNEL_BUFFERS_SYMBOL`]).
pub type ScalarKernelFn<V = FFI_ColumnarArg> =
    extern "C" fn(udf: &FFI_ScalarUDF) -> FFI_Option<FFI_ScalarKernel<V>>;

/// How an argument or a result crosses in a call. A scalar crosses as a one-row array flagged
/// as scalar, so the function sees a `ColumnarValue::Scalar` as it would natively.
pub trait KernelValue: Debug + Sized + 'static {
    /// The plugin ABI minor that introduced this way of crossing (its kernel's symbol).
    const ABI_MINOR: u16;

    /// Exports `value` to the other side.
    fn export(value: &ColumnarValue) -> Result<Self>;

    /// Exports `value`, which the caller gives up (a call's result): a way of crossing may
    /// take it apart instead of holding it.
    fn export_owned(value: ColumnarValue) -> Result<Self> {
        Self::export(&value)
    }

    /// Imports a value the other side exported.
    ///
    /// # Safety
    /// `self` was exported by [`KernelValue::export`] from a value of type `data_type`.
    unsafe fn import(self, data_type: &DataType) -> Result<ColumnarValue>;

    /// Imports a call's arguments, each as its field's type. The caller checked that there
    /// is a field for every value.
    ///
    /// # Safety
    /// Each value was exported by [`KernelValue::export`] from a value of its field's type.
    unsafe fn import_args(values: SVec<Self>, fields: &[FieldRef]) -> Result<Vec<ColumnarValue>> {
        values
            .into_iter()
            .zip(fields)
            // SAFETY: the caller's contract.
            .map(|(value, field)| unsafe { value.import(field.data_type()) })
            .collect()
    }

    /// Moves the value out, leaving one that releases nothing.
    fn take(&mut self) -> Self;

    /// Imports a call's arguments, which the caller lends for the call (plugin ABI 1.13): what
    /// this takes out of them is this side's; the caller releases the rest when the call
    /// returns. By default every value is taken and imported as [`Self::import_args`] does.
    ///
    /// # Safety
    /// As [`Self::import_args`]; the caller keeps what it lends alive until the call returns,
    /// and this side settles `lent` before the call does ([`LentArgs`]).
    unsafe fn import_lent(
        values: &mut [Self],
        fields: &[FieldRef],
        lent: &Arc<LentOwner>,
    ) -> Result<Vec<ColumnarValue>> {
        let _ = lent;
        values
            .iter_mut()
            .zip(fields)
            // SAFETY: the caller's contract.
            .map(|(value, field)| unsafe { value.take().import(field.data_type()) })
            .collect()
    }

    /// After a lent call whose arrays outlived it: moves what keeps the arrays
    /// [`Self::import_lent`] built around `lent` alive out of `values` and into `lent`.
    fn keep_lent(values: &mut [Self], lent: &LentOwner) {
        let _ = (values, lent);
    }
}

/// The array a value crosses as, and whether it stands for a scalar.
fn as_array(value: &ColumnarValue) -> Result<(ArrayRef, bool)> {
    Ok(match value {
        ColumnarValue::Array(a) => (Arc::clone(a), false),
        ColumnarValue::Scalar(s) => (s.to_array_of_size(1)?, true),
    })
}

/// The value an imported array stands for.
fn from_array(array: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    Ok(if scalar {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
    } else {
        ColumnarValue::Array(array)
    })
}

/// A value crossing in an ABI 1.2 call: its array through the Arrow C data interface.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_ColumnarArg {
    pub array: FFI_ArrowArray,
    pub scalar: bool,
}

impl KernelValue for FFI_ColumnarArg {
    const ABI_MINOR: u16 = 2;

    fn export(value: &ColumnarValue) -> Result<Self> {
        let (array, scalar) = as_array(value)?;
        Ok(Self {
            array: cdata::export(&array),
            scalar,
        })
    }

    unsafe fn import(self, data_type: &DataType) -> Result<ColumnarValue> {
        // SAFETY: the producer exported an array of the type both sides agreed on in `bind`.
        let array = unsafe { cdata::import(self.array, data_type) }?;
        from_array(array, self.scalar)
    }

    fn take(&mut self) -> Self {
        Self {
            array: std::mem::replace(&mut self.array, FFI_ArrowArray::empty()),
            scalar: self.scalar,
        }
    }
}

/// A value crossing in an ABI 1.6 call: a fixed-width array as its buffers, any other array
/// through the C data interface ([`FFI_ArrayBuffers`]).
#[repr(C)]
#[derive(Debug)]
pub struct FFI_ColumnarBuffers {
    pub array: FFI_ArrayBuffers,
    pub scalar: bool,
}

impl KernelValue for FFI_ColumnarBuffers {
    const ABI_MINOR: u16 = 6;

    fn export(value: &ColumnarValue) -> Result<Self> {
        if let ColumnarValue::Scalar(s) = value
            && let Some(array) = FFI_ArrayBuffers::from_scalar(s)
        {
            return Ok(Self {
                array,
                scalar: true,
            });
        }
        let (array, scalar) = as_array(value)?;
        Ok(Self {
            array: FFI_ArrayBuffers::new(&array),
            scalar,
        })
    }

    /// A result array is the bundle's alone, mostly: taken apart here, its objects are freed
    /// on the thread that made them, not on the one that drops the host's batch.
    fn export_owned(value: ColumnarValue) -> Result<Self> {
        match value {
            ColumnarValue::Array(array) => Ok(Self {
                array: FFI_ArrayBuffers::from_owned(array),
                scalar: false,
            }),
            scalar => Self::export(&scalar),
        }
    }

    unsafe fn import(self, data_type: &DataType) -> Result<ColumnarValue> {
        if self.scalar {
            // SAFETY: the caller's contract; a scalar has no handle to share.
            return unsafe { self.import_around(data_type, &None) };
        }
        // SAFETY: the caller's contract.
        let array = unsafe { self.array.import(data_type) }?;
        Ok(ColumnarValue::Array(array))
    }

    /// The arguments' fixed-width arrays share one owner of the host's handles, as a batch's
    /// columns do ([`buffers::share_owner`]): one allocation and one free a call fewer for
    /// each array past the first. An argument kept past the call (a result that is one of
    /// them) keeps the others' host arrays alive with it.
    unsafe fn import_args(
        mut values: SVec<Self>,
        fields: &[FieldRef],
    ) -> Result<Vec<ColumnarValue>> {
        let arrays = values
            .iter_mut()
            .zip(fields)
            .filter(|(value, _)| !value.scalar)
            .map(|(value, field)| (&mut value.array, field.data_type()));
        let owner = buffers::share_owner(arrays)?;
        values
            .into_iter()
            .zip(fields)
            // SAFETY: the caller's contract; `owner` holds the handles `share_owner` took.
            .map(|(value, field)| unsafe { value.import_around(field.data_type(), &owner) })
            .collect()
    }

    fn take(&mut self) -> Self {
        Self {
            array: std::mem::replace(&mut self.array, FFI_ArrayBuffers::empty(0)),
            scalar: self.scalar,
        }
    }

    /// A fixed-width array is built around `lent`, its handle left with the caller
    /// ([`FFI_ArrayBuffers::import_lent`]); a scalar is read as [`Self::import`] reads it.
    unsafe fn import_lent(
        values: &mut [Self],
        fields: &[FieldRef],
        lent: &Arc<LentOwner>,
    ) -> Result<Vec<ColumnarValue>> {
        // A loop, not a `collect` into a `Result`: the collecting adapters are three more
        // functions a batch runs cold in the bundle (callgrind: ~16 first-level instruction
        // cache misses a batch more than the loop).
        let mut args = Vec::with_capacity(values.len());
        for (value, field) in values.iter_mut().zip(fields) {
            args.push(match value.scalar {
                // SAFETY: the caller's contract.
                true => unsafe { value.take().import(field.data_type()) }?,
                // SAFETY: the caller's contract.
                false => ColumnarValue::Array(unsafe {
                    value.array.import_lent(field.data_type(), lent)
                }?),
            });
        }
        Ok(args)
    }

    fn keep_lent(values: &mut [Self], lent: &LentOwner) {
        lent.keep(
            values
                .iter_mut()
                .filter(|v| !v.scalar)
                .map(|v| &mut v.array),
        );
    }
}

impl FFI_ColumnarBuffers {
    /// The value: a scalar read back, an array built around `owner`, what
    /// [`buffers::share_owner`] returned for the arrays that crossed with this one.
    ///
    /// # Safety
    /// The producer exported a value of `data_type`, the type both sides agreed on in `bind`.
    unsafe fn import_around(
        self,
        data_type: &DataType,
        owner: &Option<Arc<dyn Allocation>>,
    ) -> Result<ColumnarValue> {
        if self.scalar {
            // SAFETY: the caller's contract.
            let scalar = unsafe { self.array.import_scalar(data_type) }?;
            return Ok(ColumnarValue::Scalar(scalar));
        }
        // SAFETY: the caller's contract; `owner` holds this array's handle, if it had one.
        let array = unsafe { self.array.import_shared(data_type, owner) }?;
        Ok(ColumnarValue::Array(array))
    }
}

/// A scalar function's per-batch entry, bound to one configuration and one set of argument
/// and return fields.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_ScalarCall<V = FFI_ColumnarArg> {
    pub invoke: unsafe extern "C" fn(call: &Self, args: SVec<V>, num_rows: usize) -> FFI_Result<V>,
    pub clone: unsafe extern "C" fn(call: &Self) -> Self,
    pub release: unsafe extern "C" fn(call: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
    /// ABI 1.13: [`Self::invoke`] with the `len` arguments at `args` lent for the call instead
    /// of given: the callee takes out of them what it keeps, and the caller releases the rest
    /// when the call returns. No vector to allocate, and a fixed-width argument's array stays
    /// the caller's unless something keeps it past the call ([`FFI_ArrayBuffers::import_lent`]).
    pub invoke_lent: unsafe extern "C" fn(
        call: &Self,
        args: *mut V,
        len: usize,
        num_rows: usize,
    ) -> FFI_Result<V>,
    /// ABI 1.14: for a function written over values, bound to the types it was written for,
    /// the call on the `len` arguments' values at `args`, lent with their union's `validity`
    /// and `out`, room for `num_rows` values of the return type, which the callee fills
    /// ([`super::values`]). `None` for any other function or types: the call takes
    /// [`Self::invoke_lent`].
    pub invoke_values: Option<
        unsafe extern "C" fn(
            call: &Self,
            args: *const FFI_Values,
            len: usize,
            validity: FFI_Validity,
            num_rows: usize,
            out: *mut c_void,
        ) -> FFI_Result<()>,
    >,
}

/// The plugin ABI minor whose calls have [`FFI_ScalarCall::invoke_lent`].
pub const INVOKE_LENT_MINOR: u16 = 13;

unsafe impl<V> Send for FFI_ScalarCall<V> {}
unsafe impl<V> Sync for FFI_ScalarCall<V> {}

struct ScalarCallPrivateData {
    udf: Arc<dyn ScalarUDFImpl>,
    arg_fields: Vec<FieldRef>,
    return_field: FieldRef,
    config: Arc<ConfigOptions>,
    /// The function's loop over values, when it has one for these fields.
    values: Option<Arc<dyn ValuesKernel>>,
}

impl<V: KernelValue> FFI_ScalarCall<V> {
    fn new(data: ScalarCallPrivateData) -> Self {
        let invoke_values = (data.values.as_ref()).map(|_| invoke_values_fn_wrapper::<V> as _);
        Self {
            invoke: invoke_fn_wrapper::<V>,
            clone: call_clone_fn_wrapper::<V>,
            release: call_release_fn_wrapper::<V>,
            private_data: Box::into_raw(Box::new(data)) as *mut c_void,
            library_marker_id: super::library_marker_id,
            invoke_lent: invoke_lent_fn_wrapper::<V>,
            invoke_values,
        }
    }

    fn data(&self) -> &ScalarCallPrivateData {
        // SAFETY: `private_data` is the box `new` made; only this image reads it.
        unsafe { &*(self.private_data as *const ScalarCallPrivateData) }
    }
}

impl ScalarCallPrivateData {
    /// Checks that a call brings as many arguments as were bound.
    fn check_arity(&self, called_with: usize) -> Result<()> {
        if called_with == self.arg_fields.len() {
            return Ok(());
        }
        Err(DataFusionError::Internal(format!(
            "{} was bound to {} arguments and called with {called_with}",
            self.udf.name(),
            self.arg_fields.len(),
        )))
    }

    /// Calls the function on imported arguments and exports its value.
    fn call<V: KernelValue>(&self, args: Vec<ColumnarValue>, num_rows: usize) -> Result<V> {
        let value = self.udf.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields: self.arg_fields.clone(),
            number_rows: num_rows,
            return_field: Arc::clone(&self.return_field),
            config_options: Arc::clone(&self.config),
        })?;
        V::export_owned(value)
    }

    fn who(&self) -> String {
        format!("scalar function '{}'", self.udf.name())
    }
}

unsafe extern "C" fn invoke_fn_wrapper<V: KernelValue>(
    call: &FFI_ScalarCall<V>,
    args: SVec<V>,
    num_rows: usize,
) -> FFI_Result<V> {
    let data = call.data();
    ffi_guard(
        || data.who(),
        || {
            data.check_arity(args.len())?;
            // SAFETY: the host exported each argument with the type bound for it.
            let args = unsafe { V::import_args(args, &data.arg_fields) }?;
            data.call(args, num_rows)
        },
    )
}

unsafe extern "C" fn invoke_lent_fn_wrapper<V: KernelValue>(
    call: &FFI_ScalarCall<V>,
    args: *mut V,
    len: usize,
    num_rows: usize,
) -> FFI_Result<V> {
    let data = call.data();
    let values: &mut [V] = match len {
        0 => &mut [],
        // SAFETY: the caller lends `len` values at `args` for the call.
        _ => unsafe { std::slice::from_raw_parts_mut(args, len) },
    };
    ffi_guard(
        || data.who(),
        || {
            data.check_arity(values.len())?;
            let mut lent = LentArgs::new(values);
            // SAFETY: the host exported each argument with the type bound for it, and keeps
            // them until the call returns; `lent` settles before it does.
            let args = unsafe { lent.import(&data.arg_fields) }?;
            // `lent` settles after the value is exported, which may keep an argument.
            data.call(args, num_rows)
        },
    )
}

unsafe extern "C" fn invoke_values_fn_wrapper<V: KernelValue>(
    call: &FFI_ScalarCall<V>,
    args: *const FFI_Values,
    len: usize,
    validity: FFI_Validity,
    num_rows: usize,
    out: *mut c_void,
) -> FFI_Result<()> {
    let data = call.data();
    ffi_guard(
        || data.who(),
        || {
            data.check_arity(len)?;
            let kernel = data.values.as_ref().ok_or_else(|| {
                DataFusionError::Internal(format!(
                    "{} was called over values, which it was not bound for",
                    data.who()
                ))
            })?;
            let args: &[FFI_Values] = match len {
                0 => &[],
                // SAFETY: the caller lends `len` values at `args` for the call.
                _ => unsafe { std::slice::from_raw_parts(args, len) },
            };
            // SAFETY: the host lends values of the types bound for the call, which are the
            // kernel's (`kernel_of`), `num_rows` of each, and room for `num_rows` values.
            unsafe { kernel.eval(args, validity, num_rows, out) }
        },
    )
}

/// The arguments a call was lent, and the owner their arrays were built around. Dropped when
/// the call ends, even by a panic, it keeps the caller's handles in the owner if an array
/// outlived the call.
struct LentArgs<'a, V: KernelValue> {
    values: &'a mut [V],
    owner: Option<Arc<LentOwner>>,
}

impl<'a, V: KernelValue> LentArgs<'a, V> {
    fn new(values: &'a mut [V]) -> Self {
        Self {
            values,
            owner: None,
        }
    }

    /// # Safety
    /// As [`KernelValue::import_lent`].
    unsafe fn import(&mut self, fields: &[FieldRef]) -> Result<Vec<ColumnarValue>> {
        let owner = self.owner.insert(LentOwner::for_call());
        // SAFETY: the caller's contract; `self` settles `owner` when dropped.
        unsafe { V::import_lent(self.values, fields, owner) }
    }
}

impl<V: KernelValue> Drop for LentArgs<'_, V> {
    fn drop(&mut self) {
        if let Some(outlived) = self.owner.take().and_then(LentOwner::settle) {
            V::keep_lent(self.values, &outlived);
        }
    }
}

unsafe extern "C" fn call_clone_fn_wrapper<V: KernelValue>(
    call: &FFI_ScalarCall<V>,
) -> FFI_ScalarCall<V> {
    let data = call.data();
    FFI_ScalarCall::new(ScalarCallPrivateData {
        udf: Arc::clone(&data.udf),
        arg_fields: data.arg_fields.clone(),
        return_field: Arc::clone(&data.return_field),
        config: Arc::clone(&data.config),
        values: data.values.clone(),
    })
}

unsafe extern "C" fn call_release_fn_wrapper<V>(call: &mut FFI_ScalarCall<V>) {
    if call.private_data.is_null() {
        return;
    }
    // SAFETY: the box `new` made, released once (the pointer is cleared).
    drop(unsafe { Box::from_raw(call.private_data as *mut ScalarCallPrivateData) });
    call.private_data = std::ptr::null_mut();
}

impl<V> Drop for FFI_ScalarCall<V> {
    fn drop(&mut self) {
        // SAFETY: `release` belongs to the image that made the struct.
        unsafe { (self.release)(self) }
    }
}

/// A stable struct for a scalar function's lean call path.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_ScalarKernel<V = FFI_ColumnarArg> {
    /// Binds the function to argument fields, a return field and a configuration.
    pub bind: unsafe extern "C" fn(
        kernel: &Self,
        arg_fields: SVec<WrappedSchema>,
        return_field: WrappedSchema,
        config: FFI_ConfigOptions,
    ) -> FFI_Result<FFI_ScalarCall<V>>,
    pub clone: unsafe extern "C" fn(kernel: &Self) -> Self,
    pub release: unsafe extern "C" fn(kernel: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
}

unsafe impl<V> Send for FFI_ScalarKernel<V> {}
unsafe impl<V> Sync for FFI_ScalarKernel<V> {}

struct ScalarKernelPrivateData {
    udf: Arc<dyn ScalarUDFImpl>,
}

impl<V: KernelValue> FFI_ScalarKernel<V> {
    /// The kernel of `udf` (the bundle's own, panic-guarded function).
    pub fn new(udf: Arc<dyn ScalarUDFImpl>) -> Self {
        Self {
            bind: bind_fn_wrapper::<V>,
            clone: kernel_clone_fn_wrapper::<V>,
            release: kernel_release_fn_wrapper::<V>,
            private_data: Box::into_raw(Box::new(ScalarKernelPrivateData { udf })) as *mut c_void,
            library_marker_id: super::library_marker_id,
        }
    }

    /// The kernel of a function this image exported (`None` for anybody else's struct). The
    /// body of [`SCALAR_KERNEL_SYMBOL`] and [`SCALAR_KERNEL_BUFFERS_SYMBOL`], which
    /// [`crate::export_bundle!`] exports.
    pub fn for_exported(udf: &FFI_ScalarUDF) -> Option<Self> {
        if (udf.library_marker_id)() != datafusion_ffi::get_library_marker_id() {
            return None;
        }
        // Our own struct: datafusion-ffi hands back the function inside, not a wrapper.
        Some(Self::new(<Arc<dyn ScalarUDFImpl>>::from(udf)))
    }

    fn data(&self) -> &ScalarKernelPrivateData {
        // SAFETY: `private_data` is the box `new` made; only this image reads it.
        unsafe { &*(self.private_data as *const ScalarKernelPrivateData) }
    }
}

fn import_field(schema: &WrappedSchema) -> Result<FieldRef> {
    Ok(Arc::new(Field::try_from(&schema.0)?))
}

unsafe extern "C" fn bind_fn_wrapper<V: KernelValue>(
    kernel: &FFI_ScalarKernel<V>,
    arg_fields: SVec<WrappedSchema>,
    return_field: WrappedSchema,
    config: FFI_ConfigOptions,
) -> FFI_Result<FFI_ScalarCall<V>> {
    let udf = &kernel.data().udf;
    ffi_guard(
        || format!("scalar function '{}'", udf.name()),
        || {
            let arg_fields: Vec<FieldRef> =
                arg_fields.iter().map(import_field).collect::<Result<_>>()?;
            let return_field = import_field(&return_field)?;
            let values = crate::toolkit::values::kernel_of(
                udf.as_ref(),
                &arg_fields,
                return_field.data_type(),
            );
            Ok(FFI_ScalarCall::new(ScalarCallPrivateData {
                udf: Arc::clone(udf),
                arg_fields,
                return_field,
                config: Arc::new(ConfigOptions::try_from(config)?),
                values,
            }))
        },
    )
}

unsafe extern "C" fn kernel_clone_fn_wrapper<V: KernelValue>(
    kernel: &FFI_ScalarKernel<V>,
) -> FFI_ScalarKernel<V> {
    FFI_ScalarKernel::new(Arc::clone(&kernel.data().udf))
}

unsafe extern "C" fn kernel_release_fn_wrapper<V>(kernel: &mut FFI_ScalarKernel<V>) {
    if kernel.private_data.is_null() {
        return;
    }
    // SAFETY: the box `new` made, released once (the pointer is cleared).
    drop(unsafe { Box::from_raw(kernel.private_data as *mut ScalarKernelPrivateData) });
    kernel.private_data = std::ptr::null_mut();
}

impl<V> Clone for FFI_ScalarKernel<V> {
    fn clone(&self) -> Self {
        // SAFETY: `clone` belongs to the image that made the struct.
        unsafe { (self.clone)(self) }
    }
}

impl<V> Drop for FFI_ScalarKernel<V> {
    fn drop(&mut self) {
        // SAFETY: `release` belongs to the image that made the struct.
        unsafe { (self.release)(self) }
    }
}

/// What a call was bound for: one configuration and one set of fields. The `Arc`s are kept,
/// so their addresses identify them for as long as the entry lives.
struct CallKey {
    config: Arc<ConfigOptions>,
    arg_fields: Vec<FieldRef>,
    return_field: FieldRef,
}

impl CallKey {
    fn matches(&self, args: &ScalarFunctionArgs) -> bool {
        Arc::ptr_eq(&self.config, &args.config_options)
            && self.return_field == args.return_field
            && self.arg_fields == args.arg_fields
    }
}

/// The host side of an [`FFI_ScalarKernel`]: invokes the bundle's function per batch, binding
/// once per configuration and field set (a query's batches share both).
#[derive(Debug)]
pub struct ForeignScalarKernel {
    path: Box<dyn InvokeBatch>,
}

impl ForeignScalarKernel {
    /// Wraps a kernel of either ABI, from a bundle of plugin ABI 1.`abi_minor`: values cross as
    /// `V` says, lent for the call from 1.13 ([`FFI_ScalarCall::invoke_lent`]), as values for
    /// a function written over them from 1.14 ([`FFI_ScalarCall::invoke_values`]).
    pub fn new<V: KernelValue>(kernel: FFI_ScalarKernel<V>, abi_minor: u16) -> Self {
        Self {
            path: Box::new(BoundKernel {
                kernel,
                bound: BoundCache::new(),
                lent: abi_minor >= INVOKE_LENT_MINOR,
                values: abi_minor >= INVOKE_VALUES_MINOR,
            }),
        }
    }

    /// Invokes the function on one batch. The arguments are borrowed: the caller keeps them
    /// (and their return field) to check the value against.
    pub fn invoke(&self, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.path.invoke(args)
    }

    /// How this kernel's values cross, as the plugin ABI minor that introduced the way: 2,
    /// through the Arrow C data interface ([`FFI_ColumnarArg`]); 6, fixed-width arrays as
    /// their buffers ([`FFI_ColumnarBuffers`]); 13, lent for the call
    /// ([`FFI_ScalarCall::invoke_lent`]); 14, lent, and as values when the bundle binds a call
    /// over them ([`FFI_ScalarCall::invoke_values`]). Says which path a host took for a bundle.
    pub fn abi_minor(&self) -> u16 {
        self.path.abi_minor()
    }
}

/// A kernel whose value type is known, behind [`ForeignScalarKernel`].
trait InvokeBatch: Debug + Send + Sync {
    fn invoke(&self, args: &ScalarFunctionArgs) -> Result<ColumnarValue>;

    fn abi_minor(&self) -> u16;
}

#[derive(Debug)]
struct BoundKernel<V> {
    kernel: FFI_ScalarKernel<V>,
    bound: BoundCache<CallKey, Arc<FFI_ScalarCall<V>>>,
    /// The bundle's calls have [`FFI_ScalarCall::invoke_lent`] (plugin ABI 1.13 or later).
    lent: bool,
    /// The bundle's calls have [`FFI_ScalarCall::invoke_values`] (plugin ABI 1.14 or later).
    values: bool,
}

impl<V: KernelValue> BoundKernel<V> {
    /// Calls the function on `args` through `call`, over their values when the bundle bound it
    /// over values, with their arrays otherwise.
    fn invoke_bound(
        &self,
        call: &FFI_ScalarCall<V>,
        args: &ScalarFunctionArgs,
    ) -> Result<ColumnarValue> {
        // `invoke_values` is read only from a bundle whose struct has it.
        if self.values
            && let Some(invoke_values) = call.invoke_values
        {
            let eval = |values: &[FFI_Values], validity, rows, out| {
                // SAFETY: `invoke_values` belongs to the image that made the call, which bound
                // it to these arguments' types; `values::invoke` lends what it reads and writes.
                let result = unsafe {
                    invoke_values(call, values.as_ptr(), values.len(), validity, rows, out)
                };
                match result {
                    FFI_Result::Ok(()) => Ok(()),
                    FFI_Result::Err(e) => Err(DataFusionError::Ffi(e.to_string())),
                }
            };
            let (fields, return_type) = (&args.arg_fields, args.return_field.data_type());
            // SAFETY: the bundle's `invoke_values` fills the output when it answers `Ok`.
            return unsafe {
                values::invoke(&args.args, fields, args.number_rows, return_type, eval)
            };
        }
        match self.invoke_arrays(call, args)? {
            // SAFETY: the bundle exported a value of the return type bound in `bind`.
            FFI_Result::Ok(value) => unsafe { value.import(args.return_field.data_type()) },
            FFI_Result::Err(e) => Err(DataFusionError::Ffi(e.to_string())),
        }
    }

    /// Calls the function on `args`' arrays through `call`.
    fn invoke_arrays(
        &self,
        call: &FFI_ScalarCall<V>,
        args: &ScalarFunctionArgs,
    ) -> Result<FFI_Result<V>> {
        if !self.lent {
            let values: SVec<V> = args.args.iter().map(V::export).collect::<Result<_>>()?;
            // SAFETY: `invoke` belongs to the image that made the call.
            return Ok(unsafe { (call.invoke)(call, values, args.number_rows) });
        }
        // Pushed, not collected: collecting moves the whole vector (600 bytes) again.
        let mut values = SmallVec::<[V; 4]>::new();
        for arg in &args.args {
            values.push(V::export(arg)?);
        }
        // SAFETY: `invoke_lent` belongs to the image that made the call, of ABI 1.13 or later.
        // The values stay alive until it returns; they release here what the bundle did not
        // take.
        Ok(
            unsafe {
                (call.invoke_lent)(call, values.as_mut_ptr(), values.len(), args.number_rows)
            },
        )
    }

    fn bind(&self, args: &ScalarFunctionArgs) -> Result<(CallKey, Arc<FFI_ScalarCall<V>>)> {
        let export = |f: &FieldRef| -> Result<WrappedSchema> {
            Ok(WrappedSchema(FFI_ArrowSchema::try_from(f.as_ref())?))
        };
        let arg_fields: SVec<WrappedSchema> =
            args.arg_fields.iter().map(export).collect::<Result<_>>()?;
        let config = FFI_ConfigOptions::from(args.config_options.as_ref());
        // SAFETY: `bind` belongs to the image that made the kernel.
        let call = unsafe {
            (self.kernel.bind)(
                &self.kernel,
                arg_fields,
                export(&args.return_field)?,
                config,
            )
        };
        let call = match call {
            FFI_Result::Ok(call) => Arc::new(call),
            FFI_Result::Err(e) => return Err(DataFusionError::Ffi(e.to_string())),
        };
        let key = CallKey {
            config: Arc::clone(&args.config_options),
            arg_fields: args.arg_fields.clone(),
            return_field: Arc::clone(&args.return_field),
        };
        Ok((key, call))
    }
}

impl<V: KernelValue> InvokeBatch for BoundKernel<V> {
    /// Calls the function through the call bound for the arguments' configuration and fields,
    /// binding it first if there is none.
    fn invoke(&self, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.bound.with_bound(
            |key| key.matches(args),
            || self.bind(args),
            |call| self.invoke_bound(call, args),
        )?
    }

    fn abi_minor(&self) -> u16 {
        match (self.values, self.lent) {
            (true, _) => INVOKE_VALUES_MINOR,
            (false, true) => INVOKE_LENT_MINOR,
            (false, false) => V::ABI_MINOR,
        }
    }
}

/// Used by [`crate::export_bundle!`]: the kernel of a scalar function this bundle exported.
#[doc(hidden)]
pub fn export_kernel<V: KernelValue>(udf: &FFI_ScalarUDF) -> FFI_Option<FFI_ScalarKernel<V>> {
    match std::panic::catch_unwind(|| FFI_ScalarKernel::for_exported(udf)) {
        Ok(Some(kernel)) => FFI_Option::Some(kernel),
        _ => FFI_Option::None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, Int64Array, StringViewArray};
    use datafusion::arrow::datatypes::{
        DurationSecondType, Int64Type, TimeUnit, TimestampSecondType,
    };
    use datafusion::functions::{datetime, math, string};
    use datafusion::logical_expr::{ReturnFieldArgs, ScalarUDF, Signature, Volatility};

    use super::*;
    use crate::toolkit::guard::scalar::GuardedScalarUDF;
    use crate::toolkit::panic::BundleTag;
    use crate::toolkit::values::ValuesUDF;

    /// Calls `udf` natively and through a kernel whose values cross as `V`, as the host calls
    /// a bundle's, and checks that both give the same value, array or scalar.
    fn same_as_native<V: KernelValue>(udf: &ScalarUDF, args: Vec<ColumnarValue>, rows: usize) {
        let args = args_for(udf, args, rows);
        let native = udf.invoke_with_args(args.clone()).expect("native");
        for minor in [V::ABI_MINOR, INVOKE_LENT_MINOR, INVOKE_VALUES_MINOR] {
            let kernel = FFI_ScalarKernel::<V>::new(Arc::clone(udf.inner()));
            let kernel = ForeignScalarKernel::new(kernel, minor);
            let crossed = kernel.invoke(&args).expect("through the kernel");
            same_value(udf, &native, &crossed, minor);
        }
    }

    fn same_value(udf: &ScalarUDF, native: &ColumnarValue, crossed: &ColumnarValue, minor: u16) {
        match (&native, &crossed) {
            (ColumnarValue::Array(n), ColumnarValue::Array(c)) => assert_eq!(n, c),
            (ColumnarValue::Scalar(n), ColumnarValue::Scalar(c)) => assert_eq!(n, c),
            _ => panic!(
                "{} gave {native:?} natively, {crossed:?} crossed (ABI 1.{minor})",
                udf.name()
            ),
        }
    }

    /// Arrays with nulls and offsets, scalar arguments and results, and arrays that cross
    /// through the C data interface.
    fn all_cases<V: KernelValue>() {
        let ints = Int64Array::from(vec![Some(-3), None, Some(4), Some(-5), None]);
        let ints = ColumnarValue::Array(Arc::new(ints.slice(1, 4)));
        same_as_native::<V>(&math::abs(), vec![ints], 4);

        let floats = Float64Array::from(vec![Some(1.5), None, Some(-2.0)]);
        let floats = ColumnarValue::Array(Arc::new(floats));
        let two = ColumnarValue::Scalar(ScalarValue::Float64(Some(2.0)));
        same_as_native::<V>(&math::power(), vec![floats.clone(), two], 3);

        // Two arrays, one sliced: with buffers they share one owner of the host's arrays.
        let exponents = Float64Array::from(vec![Some(9.0), Some(3.0), Some(0.5), None]);
        let exponents = ColumnarValue::Array(Arc::new(exponents.slice(1, 3)));
        same_as_native::<V>(&math::power(), vec![floats, exponents], 3);

        let text = StringViewArray::from(vec![Some("abc"), None]);
        let text = ColumnarValue::Array(Arc::new(text));
        same_as_native::<V>(&string::upper(), vec![text], 2);

        let scalar = ColumnarValue::Scalar(ScalarValue::from("Xy"));
        same_as_native::<V>(&string::lower(), vec![scalar], 1);

        let unit = ColumnarValue::Scalar(ScalarValue::from("day"));
        let ts = ScalarValue::TimestampNanosecond(Some(1_700_000_000_000_000_000), None);
        let ts = ColumnarValue::Array(ts.to_array_of_size(3).expect("timestamps"));
        same_as_native::<V>(&datetime::date_trunc(), vec![unit, ts], 3);
    }

    /// The host's arrays behind a call's fixed-width arguments, exported as the host does.
    fn exported(arrays: &[&ArrayRef]) -> SVec<FFI_ColumnarBuffers> {
        arrays
            .iter()
            .map(|a| FFI_ColumnarBuffers::export(&ColumnarValue::Array(Arc::clone(a))))
            .collect::<Result<_>>()
            .expect("exports")
    }

    #[test]
    fn a_calls_fixed_width_arguments_share_one_owner() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let b: ArrayRef = Arc::new(Int64Array::from(vec![4, 5, 6]));
        let int64 = |name| Arc::new(Field::new(name, DataType::Int64, true));
        let fields = vec![int64("a"), int64("b")];

        // SAFETY: exported as the fields' type.
        let mut args = unsafe { FFI_ColumnarBuffers::import_args(exported(&[&a, &b]), &fields) }
            .expect("imports");
        let first = args.remove(0);
        drop(args);
        assert_eq!(
            Arc::strong_count(&b),
            2,
            "the first argument's owner still holds the second's host array"
        );
        drop(first);
        assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (1, 1));

        // A second argument of another width is refused, and both host arrays are released.
        let fields = vec![int64("a"), Arc::new(Field::new("b", DataType::Int32, true))];
        // SAFETY: a layout the agreed type cannot have is refused, not read.
        let refused = unsafe { FFI_ColumnarBuffers::import_args(exported(&[&a, &b]), &fields) };
        assert!(refused.is_err(), "an Int64 array imported as Int32");
        assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (1, 1));
    }

    /// Arrays `KeepsItsArgument` kept past its call.
    static KEPT: std::sync::Mutex<Vec<ArrayRef>> = std::sync::Mutex::new(Vec::new());

    /// Returns its argument as its value, or keeps a slice of it in [`KEPT`] and returns a new
    /// array: two ways for an argument to outlive its call.
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct KeepsItsArgument {
        signature: datafusion::logical_expr::Signature,
        in_a_static: bool,
    }

    impl ScalarUDFImpl for KeepsItsArgument {
        fn name(&self) -> &str {
            "keeps_its_argument"
        }

        fn signature(&self) -> &datafusion::logical_expr::Signature {
            &self.signature
        }

        fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
            Ok(arg_types[0].clone())
        }

        fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
            let argument = args.args[0].clone();
            let ColumnarValue::Array(array) = &argument else {
                return Ok(argument);
            };
            if !self.in_a_static {
                return Ok(argument);
            }
            KEPT.lock().expect("kept").push(array.slice(1, 2));
            let fresh = Int64Array::from(vec![0; array.len()]);
            Ok(ColumnarValue::Array(Arc::new(fresh)))
        }
    }

    /// A lent argument's array stays the host's when nothing keeps it, and is kept alive by
    /// the host's handle when the function's value shares its memory, or the function keeps
    /// it past the call.
    #[test]
    fn a_lent_argument_that_outlives_its_call_keeps_the_hosts_array() {
        let field = Arc::new(Field::new("a", DataType::Int64, true));
        let call = |udf: &ScalarUDF, host: &ArrayRef| {
            let kernel = FFI_ScalarKernel::<FFI_ColumnarBuffers>::new(Arc::clone(udf.inner()));
            let kernel = ForeignScalarKernel::new(kernel, INVOKE_LENT_MINOR);
            assert_eq!(kernel.abi_minor(), INVOKE_LENT_MINOR);
            let args = ScalarFunctionArgs {
                args: vec![ColumnarValue::Array(Arc::clone(host))],
                arg_fields: vec![Arc::clone(&field)],
                number_rows: host.len(),
                return_field: Arc::clone(&field),
                config_options: Arc::new(ConfigOptions::default()),
            };
            let value = kernel.invoke(&args).expect("through the kernel");
            drop(args);
            value.to_array(host.len()).expect("an array")
        };
        let ints = |v: Vec<Option<i64>>| Arc::new(Int64Array::from(v)) as ArrayRef;

        let host = ints(vec![Some(-1), Some(2), Some(-3)]);
        let absolute = call(&math::abs(), &host);
        assert_eq!(Arc::strong_count(&host), 1, "nothing kept the argument");
        assert_eq!(&absolute, &ints(vec![Some(1), Some(2), Some(3)]));

        // arrow-rs's unary kernels give their value the argument's null bitmap.
        let host = ints(vec![Some(-1), None, Some(3)]);
        let absolute = call(&math::abs(), &host);
        assert_eq!(
            Arc::strong_count(&host),
            2,
            "the value shares the null bitmap"
        );
        assert_eq!(&absolute, &ints(vec![Some(1), None, Some(3)]));
        drop(absolute);
        assert_eq!(Arc::strong_count(&host), 1);

        let keeps = |in_a_static| {
            ScalarUDF::new_from_impl(KeepsItsArgument {
                signature: datafusion::logical_expr::Signature::any(
                    1,
                    datafusion::logical_expr::Volatility::Immutable,
                ),
                in_a_static,
            })
        };
        let returned = call(&keeps(false), &host);
        assert_eq!(Arc::strong_count(&host), 2, "the value is the argument");
        assert_eq!(&returned, &host);
        drop(returned);
        assert_eq!(Arc::strong_count(&host), 1);

        drop(call(&keeps(true), &host));
        assert_eq!(Arc::strong_count(&host), 2, "a static keeps the argument");
        let kept = KEPT.lock().expect("kept").pop().expect("a kept slice");
        assert_eq!(&kept, &host.slice(1, 2));
        drop(kept);
        assert_eq!(Arc::strong_count(&host), 1);
    }

    #[test]
    fn the_c_data_kernel_gives_the_native_results() {
        all_cases::<FFI_ColumnarArg>();
        values_cases::<FFI_ColumnarArg>();
    }

    #[test]
    fn the_buffers_kernel_gives_the_native_results() {
        all_cases::<FFI_ColumnarBuffers>();
        values_cases::<FFI_ColumnarBuffers>();
    }

    /// `a - a % b` over Int64, an error for `b <= 0`; panics for `b == 13`.
    fn floor_to() -> ScalarUDF {
        fn floor_to(a: i64, b: i64) -> Result<i64> {
            match b {
                13 => panic!("thirteen"),
                ..=0 => Err(DataFusionError::Execution(format!(
                    "floor_to: bad width {b}"
                ))),
                _ => Ok(a - a.rem_euclid(b)),
            }
        }
        ValuesUDF::binary::<Int64Type, Int64Type, Int64Type, _, _>(
            "floor_to",
            Volatility::Immutable,
            floor_to,
        )
        .into()
    }

    /// A function over values gives the same values, nulls and scalars through every kernel
    /// (over its values from 1.14) as natively: arrays with nulls and offsets, scalars, a null
    /// scalar, only scalars, no rows, and a type with a parameter (a time zone).
    fn values_cases<V: KernelValue>() {
        let ints = |v: Vec<Option<i64>>| Arc::new(Int64Array::from(v)) as ArrayRef;
        let a = ints(vec![Some(7), None, Some(-7), Some(25), Some(99)]).slice(1, 4);
        let b = ints(vec![Some(5), Some(0), Some(5), None, Some(10)]).slice(1, 4);
        let (a, b) = (ColumnarValue::Array(a), ColumnarValue::Array(b));
        let ten = ColumnarValue::Scalar(ScalarValue::Int64(Some(10)));
        let null = ColumnarValue::Scalar(ScalarValue::Int64(None));
        let udf = floor_to();
        // What both sides give, by hand: null where either argument is, and the function is not
        // called there (it would fail on the 0 under `a`'s null).
        let expected = ints(vec![None, Some(-10), None, Some(90)]);
        let native = udf.invoke_with_args(args_for(&udf, vec![a.clone(), b.clone()], 4));
        assert_eq!(
            &native.expect("native").to_array(4).expect("array"),
            &expected
        );
        same_as_native::<V>(&udf, vec![a.clone(), b.clone()], 4);
        same_as_native::<V>(&udf, vec![a.clone(), ten.clone()], 4);
        let widths = ColumnarValue::Array(ints(vec![Some(5), None, Some(3), Some(10)]));
        same_as_native::<V>(&udf, vec![ten.clone(), widths], 4);
        same_as_native::<V>(&udf, vec![a, null.clone()], 4);
        same_as_native::<V>(&udf, vec![ten.clone(), ten.clone()], 1);
        same_as_native::<V>(&udf, vec![null, ten.clone()], 1);
        let empty = ColumnarValue::Array(ints(vec![]));
        same_as_native::<V>(&udf, vec![empty, ten], 0);

        // A scalar of a type with no slot of its own (a duration) is lent as a one-row array.
        let shift = ValuesUDF::binary::<Int64Type, DurationSecondType, Int64Type, _, _>(
            "shift",
            Volatility::Immutable,
            |s: i64, by: i64| Ok::<_, DataFusionError>(s + by),
        );
        let shift = ScalarUDF::from(shift);
        let minute = ColumnarValue::Scalar(ScalarValue::DurationSecond(Some(60)));
        let seconds = ColumnarValue::Array(ints(vec![Some(1), None, Some(3)]));
        let args = args_for(&shift, vec![seconds.clone(), minute.clone()], 3);
        let native = shift.invoke_with_args(args).expect("native").to_array(3);
        assert_eq!(
            &native.expect("array"),
            &ints(vec![Some(61), None, Some(63)])
        );
        same_as_native::<V>(&shift, vec![seconds, minute.clone()], 3);
        let one = ColumnarValue::Scalar(ScalarValue::Int64(Some(1)));
        same_as_native::<V>(&shift, vec![one, minute], 1);

        let utc = || Some(Arc::from("UTC"));
        let seconds = ScalarValue::TimestampSecond(Some(1_700_000_123), utc());
        let seconds = ColumnarValue::Array(seconds.to_array_of_size(3).expect("timestamps"));
        let minute = ValuesUDF::unary::<TimestampSecondType, TimestampSecondType, _, _>(
            "minute_of",
            Volatility::Immutable,
            |s: i64| Ok::<_, DataFusionError>(s - s.rem_euclid(60)),
        );
        let tz = DataType::Timestamp(TimeUnit::Second, utc());
        let minute = ScalarUDF::from(
            minute.with_signature(Signature::exact(vec![tz.clone()], Volatility::Immutable)),
        );
        // Written for timestamps without a time zone: the call takes the array path and the
        // native call refuses the types, both with the same error.
        let args = args_for(&minute, vec![seconds], 3);
        let native = minute.invoke_with_args(args.clone()).unwrap_err();
        assert!(
            native
                .to_string()
                .contains("is written over values of types"),
            "{native}"
        );
        let crossed = through(&minute, &args, INVOKE_VALUES_MINOR).unwrap_err();
        assert!(
            crossed
                .to_string()
                .contains("is written over values of types"),
            "{crossed}"
        );
    }

    /// A field of each type, named `a0`, `a1`, ...
    fn fields(types: impl IntoIterator<Item = DataType>) -> Vec<FieldRef> {
        (types.into_iter().enumerate())
            .map(|(i, t)| Arc::new(Field::new(format!("a{i}"), t, true)))
            .collect()
    }

    /// The arguments `udf` is called with, as DataFusion makes them.
    fn args_for(udf: &ScalarUDF, args: Vec<ColumnarValue>, rows: usize) -> ScalarFunctionArgs {
        let arg_fields = fields(args.iter().map(|a| a.data_type()));
        let scalars: Vec<Option<&ScalarValue>> = args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        let return_field = udf
            .return_field_from_args(ReturnFieldArgs {
                arg_fields: &arg_fields,
                scalar_arguments: &scalars,
            })
            .expect("return field");
        ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: rows,
            return_field,
            config_options: Arc::new(ConfigOptions::default()),
        }
    }

    /// Calls `udf` through its buffers kernel, as a host of plugin ABI 1.`minor` does.
    fn through(udf: &ScalarUDF, args: &ScalarFunctionArgs, minor: u16) -> Result<ColumnarValue> {
        let kernel = FFI_ScalarKernel::<FFI_ColumnarBuffers>::new(Arc::clone(udf.inner()));
        ForeignScalarKernel::new(kernel, minor).invoke(args)
    }

    /// The call a bundle binds for `udf` (wrapped in the toolkit's guard, as a bundle's are).
    fn bound(udf: ScalarUDF, arg_types: &[DataType]) -> FFI_ScalarCall<FFI_ColumnarBuffers> {
        let udf = GuardedScalarUDF::wrap(udf, &BundleTag::new("test", None));
        let fields = fields(arg_types.iter().cloned());
        let return_field = udf
            .return_field_from_args(ReturnFieldArgs {
                arg_fields: &fields,
                scalar_arguments: &vec![None; fields.len()],
            })
            .expect("return field");
        let export = |f: &FieldRef| WrappedSchema(FFI_ArrowSchema::try_from(f.as_ref()).unwrap());
        let kernel = FFI_ScalarKernel::<FFI_ColumnarBuffers>::new(Arc::clone(udf.inner()));
        // SAFETY: the kernel was made here.
        let call = unsafe {
            (kernel.bind)(
                &kernel,
                fields.iter().map(export).collect(),
                export(&return_field),
                FFI_ConfigOptions::from(&ConfigOptions::default()),
            )
        };
        match call {
            FFI_Result::Ok(call) => call,
            FFI_Result::Err(e) => panic!("bind: {e}"),
        }
    }

    /// A bundle offers a call over values for a function written over them, bound to the types
    /// it was written for, through the toolkit's guard; for any other function or types, not.
    #[test]
    fn a_call_is_bound_over_values_only_for_a_function_written_over_them() {
        let int64 = [DataType::Int64, DataType::Int64];
        assert!(bound(floor_to(), &int64).invoke_values.is_some());
        let int32 = [DataType::Int32, DataType::Int32];
        assert!(bound(floor_to(), &int32).invoke_values.is_none());
        let abs = math::abs().as_ref().clone();
        assert!(bound(abs, &[DataType::Int64]).invoke_values.is_none());
    }

    /// Over values, a bundle's function runs under its guard: a panic names the bundle and the
    /// function, and the conformance kit's injected panic fires (`df-plugin-host verify`).
    #[test]
    fn a_function_over_values_panics_under_its_guard() {
        let guarded = |inject| GuardedScalarUDF::wrap(floor_to(), &BundleTag::new("test", inject));
        let a = ColumnarValue::Array(Arc::new(Int64Array::from(vec![1, 2])));
        let width = |w| ColumnarValue::Scalar(ScalarValue::Int64(Some(w)));
        let cases = [
            (
                None,
                13,
                "scalar function 'floor_to' of plugin bundle 'test' panicked in invoke: thirteen",
            ),
            (Some("floor_to"), 10, crate::toolkit::panic::INJECTED_PANIC),
        ];
        for (inject, w, expected) in cases {
            let udf = guarded(inject);
            let args = args_for(&udf, vec![a.clone(), width(w)], 2);
            let e = through(&udf, &args, INVOKE_VALUES_MINOR)
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{e}");
        }
    }

    /// Over values, an argument that is not what its field says (a bug in whatever calls the
    /// function) is refused before any value is read, natively and across.
    #[test]
    fn a_function_over_values_refuses_an_argument_that_does_not_fit_its_field() {
        let udf = floor_to();
        let int32 = Arc::new(datafusion::arrow::array::Int32Array::from(vec![1, 2]));
        let int64 = Arc::new(Int64Array::from(vec![1]));
        let cases: [(ArrayRef, &str); 2] = [
            (int32, "was called with a value of type Int32"),
            (int64, "on 2 row(s) with an array of 1"),
        ];
        // One argument more than the fields the call was bound to.
        let a = ColumnarValue::Array(Arc::new(Int64Array::from(vec![5, 6])));
        let mut args = args_for(&udf, vec![a.clone(), a.clone()], 2);
        args.args.push(a);
        let native = udf.invoke_with_args(args.clone()).unwrap_err().to_string();
        let crossed = through(&udf, &args, INVOKE_VALUES_MINOR)
            .unwrap_err()
            .to_string();
        for e in [native, crossed] {
            assert!(
                e.contains("called with 3 argument(s) and 2 field(s)"),
                "{e}"
            );
        }
        for (wrong, expected) in cases {
            let a = ColumnarValue::Array(Arc::new(Int64Array::from(vec![5, 6])));
            let mut args = args_for(&udf, vec![a.clone(), a], 2);
            args.args[1] = ColumnarValue::Array(wrong);
            let native = udf.invoke_with_args(args.clone()).unwrap_err().to_string();
            let crossed = through(&udf, &args, INVOKE_VALUES_MINOR)
                .unwrap_err()
                .to_string();
            for e in [native, crossed] {
                assert!(e.contains(expected), "{e}");
            }
        }
    }

    /// The function's errors and panics come back as errors over values, as over arrays.
    #[test]
    fn a_function_over_values_fails_with_its_own_error() {
        let udf = floor_to();
        let a = ColumnarValue::Array(Arc::new(Int64Array::from(vec![1, 2])));
        for (width, expected) in [(0, "floor_to: bad width 0"), (13, "panicked: thirteen")] {
            let b = ColumnarValue::Scalar(ScalarValue::Int64(Some(width)));
            let args = args_for(&udf, vec![a.clone(), b], 2);
            for minor in [INVOKE_LENT_MINOR, INVOKE_VALUES_MINOR] {
                let e = through(&udf, &args, minor).unwrap_err().to_string();
                assert!(e.contains(expected), "1.{minor}: {e}");
            }
        }
    }
}
