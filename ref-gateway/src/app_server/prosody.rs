//! The pushbench XMPP target's Prosody: `targets/prosody/prosody.cfg.lua.in` (smacks, mam, offline,
//! cloud_notify, component `push.localhost`) plus `targets/prosody/mod_cloud_notify_jmi.lua`, run by
//! [`xmpp_peer::prosody`]'s launcher. Used by the app server's tests.

pub use xmpp_peer::prosody::{Prosody, ProsodyError, ProsodyOptions, DOMAIN, PUSH_JID};

/// The target's config template (placeholders `@@NAME@@`).
pub const CONFIG_TEMPLATE: &str = include_str!("../../../targets/prosody/prosody.cfg.lua.in");
/// Our module that marks JMI actions in the notification.
pub const JMI_MODULE: &str = include_str!("../../../targets/prosody/mod_cloud_notify_jmi.lua");

/// Options for the target's Prosody; with `jmi_module` false it runs vanilla mod_cloud_notify
/// (to observe what it publishes for a call).
pub fn target_options(jmi_module: bool) -> ProsodyOptions {
    let (config_template, modules) = if jmi_module {
        (
            CONFIG_TEMPLATE.to_owned(),
            vec![("mod_cloud_notify_jmi.lua".to_owned(), JMI_MODULE.to_owned())],
        )
    } else {
        (
            CONFIG_TEMPLATE.replace("\"cloud_notify_jmi\";", ""),
            Vec::new(),
        )
    };
    ProsodyOptions {
        config_template,
        modules,
        ..ProsodyOptions::default()
    }
}
