//! seL4 invocation labels and kernel facts, read from a Microkit SDK or taken from the table of
//! the pinned one (seL4 16.0.0, Microkit 2.3.0). The labels shift with the kernel configuration
//! (debug kernels add the HardwareDebugAPI's TCB invocations), so a wrong table fails every
//! invocation at run time; comparing against the SDK catches that at build time.

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
};

use serde_json::{Map as JsonObject, Value};

/// The invocations lazyfp makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Invocation {
    TcbReadRegisters,
    TcbWriteRegisters,
    TcbSuspend,
    TcbResume,
    TcbSetFlags,
    IrqAckIrq,
    ArmSmcCall,
    ArmVcpuInjectIrq,
    ArmVcpuReadReg,
    ArmVcpuWriteReg,
    ArmVcpuAckVppi,
}

impl Invocation {
    pub const ALL: [Self; 11] = [
        Self::TcbReadRegisters,
        Self::TcbWriteRegisters,
        Self::TcbSuspend,
        Self::TcbResume,
        Self::TcbSetFlags,
        Self::IrqAckIrq,
        Self::ArmSmcCall,
        Self::ArmVcpuInjectIrq,
        Self::ArmVcpuReadReg,
        Self::ArmVcpuWriteReg,
        Self::ArmVcpuAckVppi,
    ];

    /// The name in seL4's `invocations_all.json`.
    pub fn sel4_name(self) -> &'static str {
        match self {
            Self::TcbReadRegisters => "TCBReadRegisters",
            Self::TcbWriteRegisters => "TCBWriteRegisters",
            Self::TcbSuspend => "TCBSuspend",
            Self::TcbResume => "TCBResume",
            Self::TcbSetFlags => "TCBSetFlags",
            Self::IrqAckIrq => "IRQAckIRQ",
            Self::ArmSmcCall => "ARMSMCCall",
            Self::ArmVcpuInjectIrq => "ARMVCPUInjectIRQ",
            Self::ArmVcpuReadReg => "ARMVCPUReadReg",
            Self::ArmVcpuWriteReg => "ARMVCPUWriteReg",
            Self::ArmVcpuAckVppi => "ARMVCPUAckVPPI",
        }
    }

    /// The name of the generated constant.
    pub fn const_name(self) -> &'static str {
        match self {
            Self::TcbReadRegisters => "TCB_READ_REGISTERS",
            Self::TcbWriteRegisters => "TCB_WRITE_REGISTERS",
            Self::TcbSuspend => "TCB_SUSPEND",
            Self::TcbResume => "TCB_RESUME",
            Self::TcbSetFlags => "TCB_SET_FLAGS",
            Self::IrqAckIrq => "IRQ_ACK_IRQ",
            Self::ArmSmcCall => "ARM_SMC_CALL",
            Self::ArmVcpuInjectIrq => "ARM_VCPU_INJECT_IRQ",
            Self::ArmVcpuReadReg => "ARM_VCPU_READ_REG",
            Self::ArmVcpuWriteReg => "ARM_VCPU_WRITE_REG",
            Self::ArmVcpuAckVppi => "ARM_VCPU_ACK_VPPI",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An invocation label for each [`Invocation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Labels([u64; 11]);

impl Labels {
    pub fn get(&self, invocation: Invocation) -> u64 {
        self.0[invocation.index()]
    }
}

/// Debug kernels (HardwareDebugAPI on) have four more TCB invocations before TCBSetFlags.
const DEBUG_LABELS: Labels = Labels([2, 3, 12, 13, 21, 31, 47, 60, 61, 62, 63]);
const RELEASE_LABELS: Labels = Labels([2, 3, 12, 13, 17, 27, 43, 56, 57, 58, 59]);
/// The SMP configurations of qemu_virt_aarch64.
const SMP_CORES: usize = 4;
const KNOWN_CONFIGS: [&str; 6] = [
    "debug",
    "release",
    "benchmark",
    "smp-debug",
    "smp-release",
    "smp-benchmark",
];

/// What lazyfp's code needs to know about the kernel it runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelFacts {
    pub labels: Labels,
    pub num_cores: usize,
    /// Whether the kernel has the HardwareDebugAPI (breakpoint and single-step invocations).
    pub hardware_debug_api: bool,
    /// Whether the kernel prints (and has `seL4_DebugPutChar`).
    pub printing: bool,
}

impl KernelFacts {
    /// The facts of the pinned SDK for a config, if the config is one of its own.
    fn builtin(config: &str) -> Option<Self> {
        let debug = match config.strip_prefix("smp-").unwrap_or(config) {
            "debug" => true,
            "release" | "benchmark" => false,
            _ => return None,
        };
        Some(Self {
            labels: if debug { DEBUG_LABELS } else { RELEASE_LABELS },
            num_cores: if config.starts_with("smp-") {
                SMP_CORES
            } else {
                1
            },
            hardware_debug_api: debug,
            printing: debug,
        })
    }
}

/// One label on which an SDK and the built-in table disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelMismatch {
    pub invocation: Invocation,
    pub sdk: u64,
    pub builtin: u64,
}

#[derive(Debug)]
pub enum SdkError {
    NoSdk {
        sdk: PathBuf,
    },
    NoBoard {
        sdk: PathBuf,
        board: String,
        available: Vec<String>,
    },
    NoConfig {
        sdk: PathBuf,
        board: String,
        config: String,
        available: Vec<String>,
    },
    Read {
        path: PathBuf,
        source: io::Error,
    },
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    NotAnObject {
        path: PathBuf,
    },
    MissingKey {
        path: PathBuf,
        key: &'static str,
    },
    BadKey {
        path: PathBuf,
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    /// The SDK's labels are not those of the pinned SDK for the same config.
    Mismatch {
        sdk: PathBuf,
        board: String,
        config: String,
        mismatches: Vec<LabelMismatch>,
    },
    /// No SDK to read a config from, and the config is not one of the pinned SDK's.
    UnknownConfig {
        config: String,
    },
}

impl fmt::Display for SdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSdk { sdk } => {
                write!(f, "MICROKIT_SDK={}: no such directory", sdk.display())
            }
            Self::NoBoard {
                sdk,
                board,
                available,
            } => write!(
                f,
                "board \"{board}\" is not in the SDK at {} (it has: {})",
                sdk.display(),
                list(available)
            ),
            Self::NoConfig {
                sdk,
                board,
                config,
                available,
            } => write!(
                f,
                "config \"{config}\" of board \"{board}\" is not in the SDK at {} (it has: {})",
                sdk.display(),
                list(available)
            ),
            Self::Read { path, source } => write!(f, "{}: cannot read: {source}", path.display()),
            Self::Json { path, source } => {
                write!(f, "{}: malformed JSON: {source}", path.display())
            }
            Self::NotAnObject { path } => write!(f, "{}: expected a JSON object", path.display()),
            Self::MissingKey { path, key } => write!(f, "{}: no \"{key}\"", path.display()),
            Self::BadKey {
                path,
                key,
                value,
                expected,
            } => {
                write!(
                    f,
                    "{}: \"{key}\" is {value}, expected {expected}",
                    path.display()
                )
            }
            Self::Mismatch {
                sdk,
                board,
                config,
                mismatches,
            } => {
                write!(
                    f,
                    "the invocation labels of {board}/{config} in the SDK at {} differ from \
                     lazyfp's built-in table for Microkit 2.3.0:",
                    sdk.display()
                )?;
                for m in mismatches {
                    write!(
                        f,
                        " {} is {} in the SDK, {} built in;",
                        m.invocation.sel4_name(),
                        m.sdk,
                        m.builtin
                    )?;
                }
                Ok(())
            }
            Self::UnknownConfig { config } => write!(
                f,
                "config \"{config}\" is unknown without MICROKIT_SDK (built in: {})",
                KNOWN_CONFIGS.join(", ")
            ),
        }
    }
}

impl std::error::Error for SdkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            Self::Json { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.join(", ")
    }
}

/// The kernel facts for `board` and `config`: read from the SDK when there is one (and checked
/// against the built-in table when the config is one of the pinned SDK's), else built in.
pub fn kernel_facts(
    sdk: Option<&Path>,
    board: &str,
    config: &str,
) -> Result<KernelFacts, SdkError> {
    let builtin = KernelFacts::builtin(config);
    let Some(sdk) = sdk else {
        return builtin.ok_or_else(|| SdkError::UnknownConfig {
            config: config.to_owned(),
        });
    };
    let facts = read_sdk(sdk, board, config)?;
    if let Some(builtin) = builtin {
        let mismatches: Vec<LabelMismatch> = Invocation::ALL
            .into_iter()
            .filter(|&i| facts.labels.get(i) != builtin.labels.get(i))
            .map(|i| LabelMismatch {
                invocation: i,
                sdk: facts.labels.get(i),
                builtin: builtin.labels.get(i),
            })
            .collect();
        if !mismatches.is_empty() {
            return Err(SdkError::Mismatch {
                sdk: sdk.to_owned(),
                board: board.to_owned(),
                config: config.to_owned(),
                mismatches,
            });
        }
    }
    Ok(facts)
}

fn read_sdk(sdk: &Path, board: &str, config: &str) -> Result<KernelFacts, SdkError> {
    if !sdk.is_dir() {
        return Err(SdkError::NoSdk {
            sdk: sdk.to_owned(),
        });
    }
    let boards = sdk.join("board");
    let board_dir = boards.join(board);
    if !board_dir.is_dir() {
        return Err(SdkError::NoBoard {
            sdk: sdk.to_owned(),
            board: board.to_owned(),
            available: subdirs(&boards),
        });
    }
    let config_dir = board_dir.join(config);
    if !config_dir.is_dir() {
        return Err(SdkError::NoConfig {
            sdk: sdk.to_owned(),
            board: board.to_owned(),
            config: config.to_owned(),
            available: subdirs(&board_dir),
        });
    }

    let path = config_dir.join("invocations_all.json");
    let invocations = object(&path)?;
    let mut labels = [0; 11];
    for invocation in Invocation::ALL {
        let key = invocation.sel4_name();
        let value = invocations.get(key).ok_or_else(|| SdkError::MissingKey {
            path: path.clone(),
            key,
        })?;
        labels[invocation.index()] = value
            .as_u64()
            .ok_or_else(|| bad_key(&path, key, value, "an unsigned integer"))?;
    }

    let path = config_dir
        .join("include")
        .join("kernel")
        .join("gen_config.json");
    let config = object(&path)?;
    let smp = flag(&path, &config, "ENABLE_SMP_SUPPORT")?;
    let num_cores = match config.get("MAX_NUM_NODES") {
        // seL4 writes numeric options as strings.
        Some(value) => value
            .as_str()
            .and_then(|s| s.parse::<usize>().ok())
            .or_else(|| value.as_u64().and_then(|n| usize::try_from(n).ok()))
            .filter(|&n| n > 0)
            .ok_or_else(|| bad_key(&path, "MAX_NUM_NODES", value, "a positive number"))?,
        None if smp => {
            return Err(SdkError::MissingKey {
                path,
                key: "MAX_NUM_NODES",
            })
        }
        None => 1,
    };
    Ok(KernelFacts {
        labels: Labels(labels),
        num_cores,
        hardware_debug_api: flag(&path, &config, "HARDWARE_DEBUG_API")?,
        printing: flag(&path, &config, "PRINTING")?,
    })
}

/// A boolean option of gen_config.json; an absent one counts as off.
fn flag(
    path: &Path,
    config: &JsonObject<String, Value>,
    key: &'static str,
) -> Result<bool, SdkError> {
    match config.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(value) => Err(bad_key(path, key, value, "true or false")),
    }
}

fn bad_key(path: &Path, key: &'static str, value: &Value, expected: &'static str) -> SdkError {
    SdkError::BadKey {
        path: path.to_owned(),
        key,
        value: value.to_string(),
        expected,
    }
}

fn object(path: &Path) -> Result<JsonObject<String, Value>, SdkError> {
    let text = fs::read_to_string(path).map_err(|source| SdkError::Read {
        path: path.to_owned(),
        source,
    })?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(SdkError::NotAnObject {
            path: path.to_owned(),
        }),
        Err(source) => Err(SdkError::Json {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The directory names under `dir`, sorted; empty if it cannot be read.
fn subdirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Rust constants for the labels and facts, for the runtime to `include!`.
pub fn labels_rs(facts: &KernelFacts) -> String {
    let mut out =
        String::from("// Generated by lazyfp-build from the kernel configuration. Do not edit.\n");
    for invocation in Invocation::ALL {
        out.push_str(&format!(
            "/// seL4 invocation label `{}`.\npub const {}: u64 = {};\n",
            invocation.sel4_name(),
            invocation.const_name(),
            facts.labels.get(invocation)
        ));
    }
    out.push_str(&format!(
        "/// Cores of the kernel configuration.\npub const NUM_CORES: usize = {};\n",
        facts.num_cores
    ));
    out.push_str(&format!(
        "/// Whether the kernel prints (and has `seL4_DebugPutChar`).\npub const PRINTING: bool = {};\n",
        facts.printing
    ));
    out.push_str(&format!(
        "/// Whether the kernel has the HardwareDebugAPI.\npub const HARDWARE_DEBUG_API: bool = {};\n",
        facts.hardware_debug_api
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBUG_JSON: &str = r#"{"InvalidInvocation": 0, "UntypedRetype": 1, "TCBReadRegisters": 2,
        "TCBWriteRegisters": 3, "TCBSuspend": 12, "TCBResume": 13, "TCBSetFlags": 21, "IRQAckIRQ": 31,
        "ARMSMCCall": 47, "ARMVCPUInjectIRQ": 60, "ARMVCPUReadReg": 61, "ARMVCPUWriteReg": 62,
        "ARMVCPUAckVPPI": 63}"#;
    const DEBUG_CONFIG: &str = r#"{"SEL4_ARCH": "aarch64", "MAX_NUM_NODES": "1", "ENABLE_SMP_SUPPORT": false,
        "HARDWARE_DEBUG_API": true, "PRINTING": true}"#;

    /// A fake SDK with one board and the given configs, each with `invocations` and `config`.
    fn fake_sdk(configs: &[(&str, &str, &str)]) -> tempfile::TempDir {
        let sdk = tempfile::tempdir().unwrap();
        for (name, invocations, config) in configs {
            let dir = sdk
                .path()
                .join("board")
                .join("qemu_virt_aarch64")
                .join(name);
            fs::create_dir_all(dir.join("include").join("kernel")).unwrap();
            fs::write(dir.join("invocations_all.json"), invocations).unwrap();
            fs::write(
                dir.join("include").join("kernel").join("gen_config.json"),
                config,
            )
            .unwrap();
        }
        fs::create_dir_all(sdk.path().join("board").join("maaxboard")).unwrap();
        sdk
    }

    fn facts(sdk: &tempfile::TempDir, config: &str) -> Result<KernelFacts, SdkError> {
        kernel_facts(Some(sdk.path()), "qemu_virt_aarch64", config)
    }

    #[test]
    fn a_matching_sdk_passes() {
        let sdk = fake_sdk(&[("debug", DEBUG_JSON, DEBUG_CONFIG)]);
        let facts = facts(&sdk, "debug").unwrap();
        assert_eq!(Some(facts), KernelFacts::builtin("debug"));
        assert_eq!(facts.labels.get(Invocation::ArmVcpuAckVppi), 63);
        assert!(facts.hardware_debug_api && facts.printing);
        assert_eq!(facts.num_cores, 1);
    }

    #[test]
    fn a_disagreeing_label_fails_naming_it() {
        let json = DEBUG_JSON
            .replace("\"TCBSetFlags\": 21", "\"TCBSetFlags\": 22")
            .replace("\"IRQAckIRQ\": 31", "\"IRQAckIRQ\": 30");
        let sdk = fake_sdk(&[("debug", &json, DEBUG_CONFIG)]);
        let e = facts(&sdk, "debug").unwrap_err();
        let SdkError::Mismatch { mismatches, .. } = &e else {
            panic!("expected a mismatch, got: {e}")
        };
        assert_eq!(
            mismatches,
            &[
                LabelMismatch {
                    invocation: Invocation::TcbSetFlags,
                    sdk: 22,
                    builtin: 21
                },
                LabelMismatch {
                    invocation: Invocation::IrqAckIrq,
                    sdk: 30,
                    builtin: 31
                },
            ]
        );
        let message = e.to_string();
        assert!(
            message.contains("TCBSetFlags is 22 in the SDK, 21 built in"),
            "{message}"
        );
        assert!(
            message.contains("IRQAckIRQ is 30 in the SDK, 31 built in"),
            "{message}"
        );
    }

    #[test]
    fn a_config_of_its_own_is_read_unchecked() {
        let json = DEBUG_JSON.replace("\"TCBSetFlags\": 21", "\"TCBSetFlags\": 22");
        let config = DEBUG_CONFIG.replace(
            "\"MAX_NUM_NODES\": \"1\", \"ENABLE_SMP_SUPPORT\": false",
            "\"MAX_NUM_NODES\": \"2\", \"ENABLE_SMP_SUPPORT\": true",
        );
        let sdk = fake_sdk(&[("custom", &json, &config)]);
        let facts = facts(&sdk, "custom").unwrap();
        assert_eq!(facts.labels.get(Invocation::TcbSetFlags), 22);
        assert_eq!(facts.num_cores, 2);
    }

    #[test]
    fn release_sdk_facts() {
        let json = r#"{"TCBReadRegisters": 2, "TCBWriteRegisters": 3, "TCBSuspend": 12, "TCBResume": 13,
            "TCBSetFlags": 17, "IRQAckIRQ": 27, "ARMSMCCall": 43, "ARMVCPUInjectIRQ": 56,
            "ARMVCPUReadReg": 57, "ARMVCPUWriteReg": 58, "ARMVCPUAckVPPI": 59}"#;
        let sdk = fake_sdk(&[(
            "smp-release",
            json,
            r#"{"MAX_NUM_NODES": "4", "ENABLE_SMP_SUPPORT": true, "PRINTING": false}"#,
        )]);
        assert_eq!(
            Some(facts(&sdk, "smp-release").unwrap()),
            KernelFacts::builtin("smp-release")
        );
    }

    #[test]
    fn missing_pieces_are_listed() {
        let sdk = fake_sdk(&[
            ("debug", DEBUG_JSON, DEBUG_CONFIG),
            ("smp-debug", DEBUG_JSON, DEBUG_CONFIG),
        ]);
        let e = facts(&sdk, "release").unwrap_err();
        assert!(
            matches!(&e, SdkError::NoConfig { available, .. } if available == &["debug", "smp-debug"])
        );
        assert!(
            e.to_string()
                .contains("config \"release\" of board \"qemu_virt_aarch64\" is not in the SDK"),
            "{e}"
        );
        assert!(e.to_string().contains("(it has: debug, smp-debug)"), "{e}");

        let e = kernel_facts(Some(sdk.path()), "odroidc4", "debug").unwrap_err();
        assert!(
            matches!(&e, SdkError::NoBoard { available, .. } if available == &["maaxboard", "qemu_virt_aarch64"])
        );
        assert!(
            e.to_string()
                .contains("(it has: maaxboard, qemu_virt_aarch64)"),
            "{e}"
        );

        let gone = sdk.path().join("nowhere");
        let e = kernel_facts(Some(&gone), "qemu_virt_aarch64", "debug").unwrap_err();
        assert!(matches!(e, SdkError::NoSdk { .. }));
    }

    #[test]
    fn broken_files() {
        let sdk = fake_sdk(&[("debug", "{", DEBUG_CONFIG)]);
        assert!(matches!(facts(&sdk, "debug"), Err(SdkError::Json { .. })));
        let sdk = fake_sdk(&[("debug", "[2, 3]", DEBUG_CONFIG)]);
        assert!(matches!(
            facts(&sdk, "debug"),
            Err(SdkError::NotAnObject { .. })
        ));
        let sdk = fake_sdk(&[(
            "debug",
            &DEBUG_JSON.replace("\"ARMSMCCall\"", "\"ARMSMCCal\""),
            DEBUG_CONFIG,
        )]);
        let e = facts(&sdk, "debug").unwrap_err();
        assert!(
            matches!(
                e,
                SdkError::MissingKey {
                    key: "ARMSMCCall",
                    ..
                }
            ),
            "{e}"
        );
        let sdk = fake_sdk(&[(
            "debug",
            &DEBUG_JSON.replace(": 47", ": \"47\""),
            DEBUG_CONFIG,
        )]);
        assert!(matches!(
            facts(&sdk, "debug"),
            Err(SdkError::BadKey {
                key: "ARMSMCCall",
                ..
            })
        ));
        let sdk = fake_sdk(&[(
            "debug",
            DEBUG_JSON,
            &DEBUG_CONFIG.replace("\"PRINTING\": true", "\"PRINTING\": \"y\""),
        )]);
        assert!(matches!(
            facts(&sdk, "debug"),
            Err(SdkError::BadKey {
                key: "PRINTING",
                ..
            })
        ));
        let sdk = fake_sdk(&[("debug", DEBUG_JSON, r#"{"ENABLE_SMP_SUPPORT": true}"#)]);
        assert!(matches!(
            facts(&sdk, "debug"),
            Err(SdkError::MissingKey {
                key: "MAX_NUM_NODES",
                ..
            })
        ));

        let sdk = fake_sdk(&[("debug", DEBUG_JSON, DEBUG_CONFIG)]);
        let config = sdk
            .path()
            .join("board/qemu_virt_aarch64/debug/include/kernel/gen_config.json");
        fs::remove_file(&config).unwrap();
        let e = facts(&sdk, "debug").unwrap_err();
        assert!(matches!(e, SdkError::Read { .. }));
        assert!(
            e.to_string().contains("gen_config.json: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn builtin_tables() {
        let debug = kernel_facts(None, "qemu_virt_aarch64", "debug").unwrap();
        let debug_labels: Vec<u64> = Invocation::ALL
            .iter()
            .map(|&i| debug.labels.get(i))
            .collect();
        assert_eq!(debug_labels, [2, 3, 12, 13, 21, 31, 47, 60, 61, 62, 63]);
        assert_eq!(
            (debug.num_cores, debug.printing, debug.hardware_debug_api),
            (1, true, true)
        );
        let smp_debug = kernel_facts(None, "qemu_virt_aarch64", "smp-debug").unwrap();
        assert_eq!((smp_debug.labels, smp_debug.num_cores), (debug.labels, 4));

        for config in ["release", "benchmark", "smp-release", "smp-benchmark"] {
            let facts = kernel_facts(None, "qemu_virt_aarch64", config).unwrap();
            let labels: Vec<u64> = Invocation::ALL
                .iter()
                .map(|&i| facts.labels.get(i))
                .collect();
            assert_eq!(
                labels,
                [2, 3, 12, 13, 17, 27, 43, 56, 57, 58, 59],
                "{config}"
            );
            assert_eq!(
                facts.num_cores,
                if config.starts_with("smp-") { 4 } else { 1 },
                "{config}"
            );
            assert!(!facts.printing && !facts.hardware_debug_api, "{config}");
        }

        let e = kernel_facts(None, "qemu_virt_aarch64", "debugg").unwrap_err();
        assert!(matches!(&e, SdkError::UnknownConfig { config } if config == "debugg"));
        assert!(
            e.to_string()
                .contains("config \"debugg\" is unknown without MICROKIT_SDK"),
            "{e}"
        );
    }

    #[test]
    fn labels_as_rust() {
        let code = labels_rs(&kernel_facts(None, "qemu_virt_aarch64", "debug").unwrap());
        for expected in [
            "pub const TCB_READ_REGISTERS: u64 = 2;\n",
            "pub const TCB_SET_FLAGS: u64 = 21;\n",
            "pub const IRQ_ACK_IRQ: u64 = 31;\n",
            "pub const ARM_SMC_CALL: u64 = 47;\n",
            "pub const ARM_VCPU_ACK_VPPI: u64 = 63;\n",
            "pub const NUM_CORES: usize = 1;\n",
            "pub const PRINTING: bool = true;\n",
        ] {
            assert!(code.contains(expected), "{expected:?} not in:\n{code}");
        }
        assert_eq!(code.matches("pub const").count(), Invocation::ALL.len() + 3);
    }
}
