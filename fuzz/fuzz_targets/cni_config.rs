//! Fuzzes what the CNI plugin reads from the runtime (`ovnkit_kube::cni::spec`): the `CNI_*`
//! environment and the network configuration on stdin.
//!
//! The input is `KEY=VALUE` lines (the environment), a NUL byte, then the configuration. Errors
//! must carry the codes the module documents and a message; a configuration that parses must
//! hold only values in range and report the version `requested_version` finds; a `prevResult`
//! that reads as an attachment must read back the same from the result it prints; a request
//! must survive the agent protocol's JSON round trip.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use ovnkit_kube::cni::protocol::Request;
use ovnkit_kube::cni::spec::{self, CniEnv, CniVersion, NetConf};

fuzz_target!(|data: &[u8]| {
    let (env_bytes, config) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let vars: BTreeMap<String, String> = String::from_utf8_lossy(env_bytes)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();

    let env = CniEnv::from_map(&vars);
    if let Err(e) = &env {
        assert_eq!(e.code, 4, "{e}");
        assert!(!e.msg.is_empty());
    }
    let conf = NetConf::parse(config);
    match &conf {
        Ok(c) => {
            assert_eq!(NetConf::requested_version(config), Some(c.cni_version));
            assert!(c.mtu.is_none_or(|m| (spec::MIN_MTU..=spec::MAX_MTU).contains(&m)));
            let secs = c.timeout.as_secs();
            assert!((1..=spec::MAX_TIMEOUT_SECONDS).contains(&secs));
            assert!(c.agent_socket.is_absolute());
            assert!(!c.name.is_empty() && !c.plugin_type.is_empty());
        }
        Err(e) => {
            assert!(matches!(e.code, 1 | 5 | 6 | 7), "{e}");
            assert!(!e.msg.is_empty());
            let _ = e.to_json(CniVersion::V1_0_0);
        }
    }
    let (Ok(env), Ok(conf)) = (env, conf) else {
        return;
    };
    if let Some(prev) = &conf.prev_result
        && let Ok(a) = spec::attachment_of_result(prev, &env.ifname)
    {
        let printed = spec::result_json(CniVersion::V1_1_0, &a);
        assert_eq!(spec::attachment_of_result(&printed, &env.ifname).as_ref(), Ok(&a));
    }
    match spec::request(&env, &conf) {
        Ok(Some(req)) => {
            let line = serde_json::to_vec(&req).unwrap();
            let back: Request = serde_json::from_slice(&line).unwrap();
            assert_eq!(back, req);
        }
        Ok(None) => {}
        Err(e) => assert!(matches!(e.code, 1 | 7), "{e}"),
    }
});
