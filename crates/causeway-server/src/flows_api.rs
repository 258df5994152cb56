//! `/api/v1/flows`: stored flow reports (`l4_flow_log`), newest first, with
//! the same field names as `causeway replay --flows --format json`, plus
//! the agent and both ends' services by name.

use crate::api::{blocking, counted, enum_param, ApiError, ApiState, Params, MAX_LIMIT};
use crate::dict::Dictionary;
use crate::flows::{FlowQuery, StoredFlow};
use axum::extract::{Query, State};
use axum::Json;
use causeway_model::tags::TagKind;
use causeway_model::{CloseType, L4Protocol, L7Protocol};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

fn addr(ip: &str, port: u32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// A stored flow report as JSON.
pub fn flow_json(f: &StoredFlow, dict: &Dictionary) -> Value {
    let r = &f.row;
    let side = |packets, bytes, payload, retrans, ooo, zw, rst, syn, fin| {
        json!({
            "packets": packets, "bytes": bytes, "payload_bytes": payload,
            "retransmissions": retrans, "out_of_order": ooo, "zero_windows": zw,
            "resets": rst, "syns": syn, "fins": fin,
        })
    };
    json!({
        "flow_id": r.flow_id,
        "agent": &*dict.name(TagKind::Agent, f.agent),
        "l4_protocol": L4Protocol::from_code(r.l4_protocol).map_or("unknown", |p| p.as_str()),
        "client": addr(&r.src_ip, r.src_port),
        "server": addr(&r.dst_ip, r.dst_port),
        "client_service": &*dict.name(TagKind::Service, r.service_0),
        "server_service": &*dict.name(TagKind::Service, r.service_1),
        "interface": r.interface,
        "start_time_us": r.start_time_us,
        "end_time_us": r.end_time_us,
        "period_start_us": r.period_start_us,
        "new_flow": r.new_flow,
        "close_type": CloseType::from_code(r.close_type).as_str(),
        "sides": [
            side(r.packets_0, r.bytes_0, r.payload_bytes_0, r.retransmissions_0, r.out_of_order_0,
                 r.zero_windows_0, r.resets_0, r.syns_0, r.fins_0),
            side(r.packets_1, r.bytes_1, r.payload_bytes_1, r.retransmissions_1, r.out_of_order_1,
                 r.zero_windows_1, r.resets_1, r.syns_1, r.fins_1),
        ],
        "total_packets": [r.total_packets_0, r.total_packets_1],
        "total_bytes": [r.total_bytes_0, r.total_bytes_1],
        "rtt_client_us": r.rtt_client_us,
        "rtt_server_us": r.rtt_server_us,
        "srt_sum_us": r.srt_sum_us,
        "srt_count": r.srt_count,
        "srt_max_us": r.srt_max_us,
        "l7_protocol": L7Protocol::from_code(r.l7_protocol).as_str(),
        "l7_requests": r.l7_requests,
        "l7_errors": r.l7_errors,
    })
}

/// The query of `/api/v1/flows` parameters.
pub fn flow_query(params: HashMap<String, String>) -> Result<FlowQuery, ApiError> {
    let mut p = Params(params);
    let (from_us, to_us) = p.range(Duration::from_secs(15 * 60))?;
    let port = p
        .number("port")?
        .map(|v| u16::try_from(v).map_err(|_| crate::api::bad(format!("port={v}: at most 65535"))))
        .transpose()?;
    let close_type = enum_param(
        &mut p,
        "close_type",
        CloseType::from_name,
        &CloseType::ALL.map(|c| c.as_str()).join("|"),
    )?
    .map(CloseType::code);
    let limit = p.number("limit")?.unwrap_or(100);
    if limit == 0 || limit > u64::from(MAX_LIMIT) {
        return Err(crate::api::bad(format!(
            "limit={limit}: between 1 and {MAX_LIMIT}"
        )));
    }
    p.done()?;
    Ok(FlowQuery {
        from_us,
        to_us,
        port,
        close_type,
        limit: limit as u32,
    })
}

pub async fn flows(
    State(st): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let r = async {
        let q = flow_query(params)?;
        let store = st.store.clone();
        let rows = blocking(&st.stats, move || store.flows(&q)).await?;
        Ok(Json(json!({
            "flows": rows.iter().map(|f| flow_json(f, &st.dict)).collect::<Vec<_>>(),
        })))
    }
    .await;
    counted(&st.stats, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<FlowQuery, String> {
        flow_query(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .map_err(|e| e.1)
    }

    #[test]
    fn parameters_are_checked() {
        let ok = q(&[("since", "5m"), ("port", "80"), ("close_type", "refused")]).unwrap();
        assert_eq!(ok.port, Some(80));
        assert_eq!(ok.close_type, Some(CloseType::Refused.code()));
        assert_eq!(ok.limit, 100);
        assert!(q(&[("port", "70000")]).unwrap_err().contains("port"));
        assert!(q(&[("close_type", "bye")])
            .unwrap_err()
            .contains("close_type"));
        assert!(q(&[("limit", "0")]).unwrap_err().contains("limit"));
        assert!(q(&[("colour", "red")]).unwrap_err().contains("colour"));
    }
}
