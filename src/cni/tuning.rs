//! cri-dockerd's `--hairpin-mode` and `--network-plugin-mtu` under CNI.
//!
//! dockershim acted on both only through the bridge config it wrote itself
//! for kubenet (`hairpinMode` for hairpin-veth, `mtu`); its CNI plugin
//! received them and ignored them, and it turned `promiscuous-bridge`
//! into `hairpin-veth` for any plugin but kubenet. docker-cri carries the
//! same intent into the chain of the operator's config: the reference
//! plugins that own the pod's interface get the field, unless the config
//! sets it already (a network's own config always wins). Neither is a
//! `runtimeConfig` capability: CNI's conventions define none for them.

use serde_json::Value;

use super::conf::NetworkList;

/// How pods reach themselves through a Service (kubelet's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HairpinMode {
    /// Hairpin on the pod's host-side veth (bridge `hairpinMode`).
    HairpinVeth,
    /// kubenet's promiscuous bridge; outside kubenet dockershim used
    /// hairpin-veth instead, and so does docker-cri.
    PromiscuousBridge,
    /// Leave the configs as written.
    None,
}

impl HairpinMode {
    /// The flag's value; empty is "not given".
    pub fn parse(text: &str) -> Result<Option<HairpinMode>, String> {
        match text.trim() {
            "" => Ok(None),
            "hairpin-veth" => Ok(Some(HairpinMode::HairpinVeth)),
            "promiscuous-bridge" => Ok(Some(HairpinMode::PromiscuousBridge)),
            "none" => Ok(Some(HairpinMode::None)),
            other => Err(format!(
                "{other:?} is not hairpin-veth, promiscuous-bridge or none"
            )),
        }
    }
}

/// The lowest MTU Linux accepts on an IPv4 interface.
const MIN_MTU: u32 = 68;

/// `--network-plugin-mtu`: 0 (cri-dockerd's default) means the plugins'
/// own default.
pub fn parse_mtu(text: &str) -> Result<Option<u32>, String> {
    let mtu: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    match mtu {
        0 => Ok(None),
        m if (MIN_MTU..=65535).contains(&m) => Ok(Some(m)),
        m => Err(format!("{m} is outside {MIN_MTU}..=65535")),
    }
}

/// What the node's flags add to plugin configs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tuning {
    pub hairpin: Option<HairpinMode>,
    pub mtu: Option<u32>,
}

/// Reference plugins that create the pod's interface and take `mtu`.
const MTU_PLUGINS: &[&str] = &["bridge", "ptp", "macvlan", "ipvlan", "vlan"];

impl Tuning {
    pub fn is_empty(&self) -> bool {
        self.hairpin.is_none() && self.mtu.is_none()
    }

    /// Fills the fields into the chain (and the list's JSON, which the
    /// result cache keeps, so DEL and CHECK see what ADD saw).
    pub fn apply(&self, list: &mut NetworkList) {
        if self.is_empty() {
            return;
        }
        for plugin in &mut list.plugins {
            self.apply_to_plugin(plugin);
        }
        if let Some(raw) = list.raw.as_object_mut() {
            raw.insert("plugins".into(), Value::Array(list.plugins.clone()));
        }
    }

    fn apply_to_plugin(&self, plugin: &mut Value) {
        let ty = plugin
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let Some(conf) = plugin.as_object_mut() else {
            return;
        };
        if let Some(mtu) = self.mtu
            && MTU_PLUGINS.contains(&ty.as_str())
        {
            conf.entry("mtu").or_insert(mtu.into());
        }
        let hairpin = matches!(
            self.hairpin,
            Some(HairpinMode::HairpinVeth | HairpinMode::PromiscuousBridge)
        );
        if hairpin && ty == "bridge" {
            conf.entry("hairpinMode").or_insert(true.into());
        }
    }
}
