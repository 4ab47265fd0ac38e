//! Tests of `lab::scenario_run`.

use super::*;

#[test]
fn a_custom_fault_spreads_its_requests_over_the_partition() {
    let spec: FaultSpec = "partition=8s@1s".parse().unwrap();
    let Plan::Paced { messages, gap, .. } = custom_plan(&spec) else {
        panic!("paced");
    };
    assert!(gap * messages as u32 >= Duration::from_secs(9));
}
