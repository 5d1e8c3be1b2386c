//! SBI wire types (serde). Tolerant where real services differ (numbers as strings or numbers, `deviceSubId` as
//! strings or integers, unknown fields ignored, missing optional fields); the fields that verification relies on are
//! required.

use serde::{Deserialize, Deserializer, Serialize};

/// A JSON value that services send as a string or as a number ("44.0", 44.0, "2", 2): kept as text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lenient(pub String);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Lenient(s)),
            serde_json::Value::Number(n) => Ok(Lenient(n.to_string())),
            serde_json::Value::Null => Ok(Lenient(String::new())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string or a number, found {other}"
            ))),
        }
    }
}

impl Lenient {
    /// The value as a number, when it is one.
    pub fn number(&self) -> Option<f64> {
        self.0.trim().parse::<f64>().ok().filter(|f| f.is_finite())
    }
}

/// `{"errorCode": "0", "errorInfo": "Success"}` (the code arrives as a string, sometimes as a number).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ErrorInfo {
    #[serde(rename = "errorCode", default)]
    pub error_code: Lenient,
    #[serde(rename = "errorInfo", default)]
    pub error_info: String,
}

impl ErrorInfo {
    pub fn is_success(&self) -> bool {
        let c = self.error_code.0.trim();
        c.is_empty() || c == "0"
    }
}

/// One device in a discovery answer (`MOSIPDISC`/`SBIDISC`).
#[derive(Debug, Clone, Deserialize)]
pub struct DiscoveryEntry {
    #[serde(rename = "deviceId", default)]
    pub device_id: Lenient,
    #[serde(rename = "deviceStatus", default)]
    pub device_status: String,
    #[serde(default)]
    pub certification: String,
    #[serde(rename = "serviceVersion", default)]
    pub service_version: String,
    #[serde(rename = "deviceSubId", default)]
    pub device_sub_id: Vec<Lenient>,
    #[serde(rename = "callbackId", default)]
    pub callback_id: String,
    /// Unsigned in discovery: base64url of the digital id JSON.
    #[serde(rename = "digitalId", default)]
    pub digital_id: String,
    #[serde(rename = "deviceCode", default)]
    pub device_code: String,
    #[serde(rename = "specVersion", default)]
    pub spec_version: Vec<String>,
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
}

/// One entry of a device info answer (`MOSIPDINFO`/`SBIINFO`): a JWS, or plain base64url JSON when not registered.
#[derive(Debug, Clone, Deserialize)]
pub struct InfoEntry {
    #[serde(rename = "deviceInfo", default)]
    pub device_info: Option<String>,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
}

/// The decoded deviceInfo payload.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceInfoPayload {
    #[serde(rename = "deviceStatus")]
    pub device_status: String,
    #[serde(rename = "deviceId", default)]
    pub device_id: Lenient,
    #[serde(default)]
    pub firmware: String,
    #[serde(default)]
    pub certification: String,
    #[serde(rename = "serviceVersion", default)]
    pub service_version: String,
    #[serde(rename = "deviceSubId", default)]
    pub device_sub_id: Vec<Lenient>,
    #[serde(rename = "callbackId", default)]
    pub callback_id: String,
    #[serde(rename = "digitalId")]
    pub digital_id: String,
    #[serde(rename = "deviceCode", default)]
    pub device_code: String,
    /// SBI 1.0 names it serialNo.
    #[serde(rename = "serialNo", default)]
    pub serial_no: String,
    #[serde(default)]
    pub env: String,
    #[serde(default)]
    pub purpose: String,
    #[serde(rename = "specVersion", default)]
    pub spec_version: Vec<String>,
}

/// The decoded digital id.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct DigitalIdPayload {
    #[serde(rename = "serialNo")]
    pub serial_no: String,
    pub make: String,
    pub model: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(rename = "deviceSubType")]
    pub device_sub_type: String,
    #[serde(rename = "deviceProvider", default)]
    pub device_provider: String,
    #[serde(rename = "deviceProviderId", default)]
    pub device_provider_id: String,
    #[serde(rename = "dateTime", default)]
    pub date_time: String,
}

impl DigitalIdPayload {
    /// The fields that name the device (not `dateTime`, which a service sets when it signs).
    pub fn same_device(&self, other: &DigitalIdPayload) -> bool {
        self.serial_no == other.serial_no
            && self.make == other.make
            && self.model == other.model
            && self.type_ == other.type_
            && self.device_sub_type == other.device_sub_type
            && self.device_provider == other.device_provider
            && self.device_provider_id == other.device_provider_id
    }
}

/// RCAPTURE request. Every number is sent as a string (MOSIP's mock refuses JSON numbers with error 123).
#[derive(Debug, Clone, Serialize)]
pub struct CaptureRequest {
    pub env: String,
    pub purpose: String,
    #[serde(rename = "specVersion")]
    pub spec_version: String,
    pub timeout: String,
    #[serde(rename = "captureTime")]
    pub capture_time: String,
    #[serde(rename = "transactionId")]
    pub transaction_id: String,
    pub bio: Vec<CaptureBio>,
    #[serde(rename = "customOpts")]
    pub custom_opts: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaptureBio {
    #[serde(rename = "type")]
    pub type_: String,
    pub count: String,
    #[serde(rename = "bioSubType")]
    pub bio_sub_type: Vec<String>,
    pub exception: Vec<String>,
    #[serde(rename = "requestedScore")]
    pub requested_score: String,
    #[serde(rename = "deviceId")]
    pub device_id: String,
    #[serde(rename = "deviceSubId")]
    pub device_sub_id: String,
    #[serde(rename = "previousHash")]
    pub previous_hash: String,
}

/// RCAPTURE answer.
#[derive(Debug, Clone, Deserialize)]
pub struct CaptureResponse {
    pub biometrics: Vec<CaptureBiometric>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CaptureBiometric {
    #[serde(rename = "specVersion", default)]
    pub spec_version: String,
    #[serde(default)]
    pub data: String,
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
}

/// The payload of a capture's `data` JWS. All fields that are checked are required.
#[derive(Debug, Clone, Deserialize)]
pub struct CaptureData {
    #[serde(rename = "digitalId")]
    pub digital_id: String,
    #[serde(rename = "deviceCode", default)]
    pub device_code: String,
    #[serde(rename = "deviceServiceVersion", default)]
    pub device_service_version: String,
    #[serde(rename = "bioType")]
    pub bio_type: String,
    #[serde(rename = "bioSubType", default)]
    pub bio_sub_type: String,
    pub purpose: String,
    pub env: String,
    #[serde(rename = "bioValue")]
    pub bio_value: String,
    #[serde(rename = "transactionId")]
    pub transaction_id: String,
    pub timestamp: String,
    #[serde(rename = "requestedScore", default)]
    pub requested_score: Lenient,
    #[serde(rename = "qualityScore")]
    pub quality_score: Lenient,
}

/// STREAM request (numbers as strings).
#[derive(Debug, Clone, Serialize)]
pub struct StreamRequest {
    #[serde(rename = "deviceId")]
    pub device_id: String,
    #[serde(rename = "deviceSubId")]
    pub device_sub_id: String,
    pub timeout: String,
}

/// A stream error: the spec's `{"error":{…}}` or the mock's bare `{"errorCode","errorInfo"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamError {
    #[serde(default)]
    pub error: Option<ErrorInfo>,
    #[serde(rename = "errorCode", default)]
    pub error_code: Option<Lenient>,
    #[serde(rename = "errorInfo", default)]
    pub error_info: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_ids_arrive_as_strings_or_numbers() {
        let d: DiscoveryEntry = serde_json::from_str(
            r#"{"deviceId":2,"deviceStatus":"Ready","deviceSubId":["1",2,"3"],"extra":true,
                "error":{"errorCode":0,"errorInfo":"Success"}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.device_id.0, "2");
        assert_eq!(
            d.device_sub_id.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
            ["1", "2", "3"]
        );
        assert!(d.error.is_some_and(|e| e.is_success()));
        assert_eq!(Lenient("44.0".into()).number(), Some(44.0));
        assert_eq!(Lenient("x".into()).number(), None);
    }
}
