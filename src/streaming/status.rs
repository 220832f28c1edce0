//! How a remote-command session reports its outcome on the error channel:
//! plain text before v4, a metav1 `Status` JSON from v4 on.

use serde::Serialize;

/// The end of an exec or attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The command exited non-zero.
    ExitCode(i32),
    /// docker-cri could not run it at all.
    Error(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    /// v1–v3: nothing on success, the error text otherwise.
    Text,
    /// v4 and v5: a JSON `Status` always.
    Json,
}

// Field order and omissions follow Go's encoding of metav1.Status, so
// clients that compare bytes see what kubelet would send.
#[derive(Serialize)]
struct Status<'a> {
    metadata: Empty,
    status: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Details<'a> {
    causes: Vec<Cause<'a>>,
}

#[derive(Serialize)]
struct Cause<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    message: String,
}

/// The bytes for the error channel; `None`: send nothing.
pub fn encode(format: StatusFormat, outcome: &Outcome) -> Option<Vec<u8>> {
    let text = match outcome {
        Outcome::Success => String::new(),
        Outcome::ExitCode(code) => {
            format!("command terminated with non-zero exit code: exit status {code}")
        }
        Outcome::Error(message) => message.clone(),
    };
    match format {
        StatusFormat::Text => (!text.is_empty()).then(|| text.into_bytes()),
        StatusFormat::Json => {
            let status = match outcome {
                Outcome::Success => Status {
                    metadata: Empty {},
                    status: "Success",
                    message: "",
                    reason: "",
                    details: None,
                    code: None,
                },
                Outcome::ExitCode(code) => Status {
                    metadata: Empty {},
                    status: "Failure",
                    message: &text,
                    reason: "NonZeroExitCode",
                    details: Some(Details {
                        causes: vec![Cause {
                            reason: "ExitCode",
                            message: code.to_string(),
                        }],
                    }),
                    code: None,
                },
                Outcome::Error(message) => Status {
                    metadata: Empty {},
                    status: "Failure",
                    message: &text,
                    reason: "InternalError",
                    details: Some(Details {
                        causes: vec![Cause {
                            reason: "",
                            message: message.clone(),
                        }],
                    }),
                    code: Some(500),
                },
            };
            serde_json::to_vec(&status).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(outcome: Outcome) -> String {
        String::from_utf8(encode(StatusFormat::Json, &outcome).unwrap()).unwrap()
    }

    #[test]
    fn v4_success() {
        assert_eq!(
            json(Outcome::Success),
            r#"{"metadata":{},"status":"Success"}"#
        );
    }

    #[test]
    fn v4_exit_code_is_a_cause() {
        assert_eq!(
            json(Outcome::ExitCode(3)),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
    }

    #[test]
    fn v4_internal_error() {
        let v: serde_json::Value =
            serde_json::from_str(&json(Outcome::Error("no such exec".into()))).unwrap();
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "InternalError");
        assert_eq!(v["code"], 500);
        assert_eq!(v["message"], "no such exec");
    }

    #[test]
    fn before_v4_success_is_silent_and_failure_is_text() {
        assert_eq!(encode(StatusFormat::Text, &Outcome::Success), None);
        let text = encode(StatusFormat::Text, &Outcome::ExitCode(2)).unwrap();
        assert!(String::from_utf8(text).unwrap().contains("exit status 2"));
    }
}
