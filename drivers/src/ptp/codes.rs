//! PTP (ISO 15740) operation, response, event, format and property codes.

/// Operation codes.
pub mod op {
    pub const GET_DEVICE_INFO: u16 = 0x1001;
    pub const OPEN_SESSION: u16 = 0x1002;
    pub const CLOSE_SESSION: u16 = 0x1003;
    pub const GET_STORAGE_IDS: u16 = 0x1004;
    pub const GET_STORAGE_INFO: u16 = 0x1005;
    pub const GET_OBJECT_HANDLES: u16 = 0x1007;
    pub const GET_OBJECT_INFO: u16 = 0x1008;
    pub const GET_OBJECT: u16 = 0x1009;
    pub const GET_THUMB: u16 = 0x100A;
    pub const DELETE_OBJECT: u16 = 0x100B;
    pub const INITIATE_CAPTURE: u16 = 0x100E;
    pub const RESET_DEVICE: u16 = 0x1010;
    pub const GET_DEVICE_PROP_DESC: u16 = 0x1014;
    pub const GET_DEVICE_PROP_VALUE: u16 = 0x1015;
    pub const SET_DEVICE_PROP_VALUE: u16 = 0x1016;
    pub const GET_PARTIAL_OBJECT: u16 = 0x101B;
    pub const INITIATE_OPEN_CAPTURE: u16 = 0x101C;
}

/// Event codes.
pub mod event {
    pub const CANCEL_TRANSACTION: u16 = 0x4001;
    pub const OBJECT_ADDED: u16 = 0x4002;
    pub const OBJECT_REMOVED: u16 = 0x4003;
    pub const DEVICE_PROP_CHANGED: u16 = 0x4006;
    pub const STORE_FULL: u16 = 0x400A;
    pub const DEVICE_RESET: u16 = 0x400B;
    pub const CAPTURE_COMPLETE: u16 = 0x400D;
}

/// Object formats.
pub mod format {
    pub const ASSOCIATION: u16 = 0x3001;
    pub const EXIF_JPEG: u16 = 0x3801;
    pub const PNG: u16 = 0x380B;
    pub const TIFF: u16 = 0x380D;
}

/// Standard device properties.
pub mod prop {
    pub const BATTERY_LEVEL: u16 = 0x5001;
    pub const IMAGE_SIZE: u16 = 0x5003;
    pub const WHITE_BALANCE: u16 = 0x5005;
    pub const F_NUMBER: u16 = 0x5007;
    pub const EXPOSURE_TIME: u16 = 0x500D;
    pub const EXPOSURE_INDEX: u16 = 0x500F;
}

/// Still Image class requests (interface recipient).
pub mod class {
    pub const CANCEL: u8 = 0x64;
    pub const DEVICE_RESET: u8 = 0x66;
    pub const GET_DEVICE_STATUS: u8 = 0x67;
}

macro_rules! responses {
    ($($name:ident = $code:literal, $meaning:literal;)*) => {
        /// Response codes, every one ISO 15740 defines, and the rest as `Other`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Response {
            $($name,)*
            Other(u16),
        }

        impl Response {
            pub fn from_code(c: u16) -> Response {
                match c {
                    $($code => Response::$name,)*
                    other => Response::Other(other),
                }
            }

            pub fn code(self) -> u16 {
                match self {
                    $(Response::$name => $code,)*
                    Response::Other(c) => c,
                }
            }

            pub fn meaning(self) -> &'static str {
                match self {
                    $(Response::$name => $meaning,)*
                    Response::Other(_) => "vendor or undefined response",
                }
            }
        }
    };
}

responses! {
    Ok = 0x2001, "OK";
    GeneralError = 0x2002, "general error";
    SessionNotOpen = 0x2003, "session not open";
    InvalidTransactionId = 0x2004, "invalid transaction id";
    OperationNotSupported = 0x2005, "operation not supported";
    ParameterNotSupported = 0x2006, "parameter not supported";
    IncompleteTransfer = 0x2007, "incomplete transfer";
    InvalidStorageId = 0x2008, "invalid storage id";
    InvalidObjectHandle = 0x2009, "invalid object handle";
    DevicePropNotSupported = 0x200A, "device property not supported";
    InvalidObjectFormatCode = 0x200B, "invalid object format code";
    StoreFull = 0x200C, "store full";
    ObjectWriteProtected = 0x200D, "object write-protected";
    StoreReadOnly = 0x200E, "store read-only";
    AccessDenied = 0x200F, "access denied";
    NoThumbnailPresent = 0x2010, "no thumbnail present";
    SelfTestFailed = 0x2011, "self test failed";
    PartialDeletion = 0x2012, "partial deletion";
    StoreNotAvailable = 0x2013, "store not available (no memory card?)";
    SpecificationByFormatUnsupported = 0x2014, "specification by format unsupported";
    NoValidObjectInfo = 0x2015, "no valid object info";
    InvalidCodeFormat = 0x2016, "invalid code format";
    UnknownVendorCode = 0x2017, "unknown vendor code";
    CaptureAlreadyTerminated = 0x2018, "capture already terminated";
    DeviceBusy = 0x2019, "device busy";
    InvalidParentObject = 0x201A, "invalid parent object";
    InvalidDevicePropFormat = 0x201B, "invalid device property format";
    InvalidDevicePropValue = 0x201C, "invalid device property value";
    InvalidParameter = 0x201D, "invalid parameter";
    SessionAlreadyOpen = 0x201E, "session already open";
    TransactionCancelled = 0x201F, "transaction cancelled";
    SpecificationOfDestinationUnsupported = 0x2020, "specification of destination unsupported";
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:04X} ({})", self.code(), self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_codes_round_trip() {
        for c in 0x2000..=0x2030u16 {
            assert_eq!(Response::from_code(c).code(), c);
        }
        assert_eq!(Response::from_code(0x2019), Response::DeviceBusy);
    }
}
