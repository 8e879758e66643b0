//! `gen_random_uuid()`: a version 4 UUID for each row, typed `uuid` (the
//! column default of many schemas). DataFusion's `uuid()` makes the
//! values; this names them as PostgreSQL does and gives them the type.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use tempora_types::PgType;

#[derive(Debug, PartialEq, Eq, Hash)]
struct GenRandomUuid {
    signature: Signature,
    values: Arc<ScalarUDF>,
}

impl ScalarUDFImpl for GenRandomUuid {
    fn name(&self) -> &str {
        "gen_random_uuid"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, _args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        Ok(Arc::new(PgType::Uuid.arrow_field(self.name(), false)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.values.invoke_with_args(args)
    }
}

pub(crate) fn gen_random_uuid() -> ScalarUDF {
    ScalarUDF::from(GenRandomUuid {
        signature: Signature::nullary(Volatility::Volatile),
        values: datafusion::functions::string::uuid(),
    })
}
