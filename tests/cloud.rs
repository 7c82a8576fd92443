//! The cloud route backends' cluster side. aws-vpc: `cloud apply` against a
//! real EC2 API on loopback (moto's server), the VPC world built and read
//! back with the AWS CLI; the rendered script run by the AWS CLI against it
//! too. Terraform JSON and scripts of both backends are golden files, and
//! the JSON is read back and checked route by route against the node plans.
//! What flanneld did comes from flannel v0.19's backend/awsvpc/awsvpc.go
//! (route per lease subnet to the instance's ENI, source/dest check off,
//! route table of the subnet else the VPC's main one) and backend/gce/api.go
//! (route name `flannel-<subnet with dashes>`, priority 1000). No Compute
//! API emulator exists here, so gce is rendered, not applied.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::moto::{self, Moto};
use common::{code, golden, root, run, stderr, stdout};
use serde_json::Value;

const WRITES: &[&str] = &["CreateRoute", "ReplaceRoute", "DeleteRoute", "ModifyInstanceAttribute"];

/// A VPC with an internet gateway, and instances at the given addresses in
/// one subnet with its own route table (the default route via the gateway).
struct World {
    vpc: String,
    subnet: String,
    table: String,
    igw: String,
    instances: Vec<String>,
}

fn world(m: &Moto, cidr: &str, ips: &[&str]) -> World {
    let vpc = m.ec2(&["create-vpc", "--cidr-block", "172.31.0.0/16", "--query", "Vpc.VpcId"]);
    let subnet = m.ec2(&["create-subnet", "--vpc-id", &vpc, "--cidr-block", cidr, "--query", "Subnet.SubnetId"]);
    let igw = m.ec2(&["create-internet-gateway", "--query", "InternetGateway.InternetGatewayId"]);
    m.ec2(&["attach-internet-gateway", "--internet-gateway-id", &igw, "--vpc-id", &vpc]);
    let table = m.ec2(&["create-route-table", "--vpc-id", &vpc, "--query", "RouteTable.RouteTableId"]);
    m.ec2(&["associate-route-table", "--route-table-id", &table, "--subnet-id", &subnet]);
    m.ec2(&["create-route", "--route-table-id", &table, "--destination-cidr-block", "0.0.0.0/0", "--gateway-id", &igw]);
    let instances = ips.iter().map(|ip| instance(m, &subnet, ip)).collect();
    World { vpc, subnet, table, igw, instances }
}

fn instance(m: &Moto, subnet: &str, ip: &str) -> String {
    m.ec2(&[
        "run-instances",
        "--image-id",
        "ami-12c6146b",
        "--count",
        "1",
        "--subnet-id",
        subnet,
        "--private-ip-address",
        ip,
        "--query",
        "Instances[0].InstanceId",
    ])
}

fn eni_of(m: &Moto, instance: &str) -> String {
    m.ec2(&[
        "describe-instances",
        "--instance-ids",
        instance,
        "--query",
        "Reservations[0].Instances[0].NetworkInterfaces[0].NetworkInterfaceId",
    ])
}

fn source_dest_check(m: &Moto, instance: &str) -> String {
    m.ec2(&[
        "describe-instance-attribute",
        "--instance-id",
        instance,
        "--attribute",
        "sourceDestCheck",
        "--query",
        "SourceDestCheck.Value",
    ])
}

/// The table's routes as (destination, target), read by the AWS CLI.
fn routes(m: &Moto, table: &str) -> BTreeSet<(String, String)> {
    let text = m.ec2(&[
        "describe-route-tables",
        "--route-table-ids",
        table,
        "--query",
        "RouteTables[0].Routes[].[DestinationCidrBlock, GatewayId || NetworkInterfaceId || InstanceId]",
    ]);
    text.lines().filter_map(|l| l.split_once('\t')).map(|(d, t)| (d.to_string(), t.to_string())).collect()
}

/// A topology of `nodes` (name, ip, instance) in `dir`, locked.
fn topology(dir: &Path, tables: Option<&[&str]>, nodes: &[(&str, &str, &str)]) -> String {
    let mut y = String::from("version: 1\ncluster: moto\nnetwork: 10.244.0.0/16\nbackend:\n  type: aws-vpc\n");
    if let Some(t) = tables {
        y.push_str(&format!("  routeTableIDs: [{}]\n", t.join(", ")));
    }
    y.push_str("nodes:\n");
    for (name, ip, id) in nodes {
        y.push_str(&format!("  - name: {name}\n    ip: {ip}/20\n    instanceID: {id}\n"));
    }
    let path = dir.join("cluster.yaml");
    std::fs::write(&path, y).expect("write topology");
    let p = path.to_string_lossy().into_owned();
    let out = run(&["lock", &p]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    p
}

/// `flannel-gen ARGS` with moto's environment.
fn fg(m: &Moto, args: &[&str]) -> std::process::Output {
    common::bin().args(args).current_dir(root()).envs(m.env()).output().expect("flannel-gen")
}

/// The node subnets the lock gave, by node (from `plan --format json`).
fn subnets(topo: &str, nodes: &[&str]) -> BTreeMap<String, String> {
    nodes
        .iter()
        .map(|n| {
            let out = run(&["plan", topo, "--node", n, "--format", "json"]);
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            let v: Value = serde_json::from_str(&stdout(&out)).expect("plan json");
            (n.to_string(), v["ipv4"]["subnet"].as_str().expect("subnet").to_string())
        })
        .collect()
}

#[test]
fn cloud_apply_converges_the_route_table_and_keeps_foreign_routes() {
    if !moto::available("cloud_apply_converges_the_route_table_and_keeps_foreign_routes") {
        return;
    }
    let m = Moto::start();
    let w = world(&m, "172.31.16.0/20", &["172.31.16.11", "172.31.16.12", "172.31.16.13"]);
    let stray = m.ec2(&[
        "create-network-interface",
        "--subnet-id",
        &w.subnet,
        "--query",
        "NetworkInterface.NetworkInterfaceId",
    ]);
    let dir = tempfile::tempdir().expect("tmp");
    let names = ["node-1", "node-2", "node-3"];
    let nodes: Vec<(&str, &str, &str)> = names
        .iter()
        .zip(["172.31.16.11", "172.31.16.12", "172.31.16.13"])
        .zip(&w.instances)
        .map(|((n, ip), id)| (*n, ip, id.as_str()))
        .collect();
    let topo = topology(dir.path(), Some(&[w.table.as_str()]), &nodes);
    let subnets = subnets(&topo, &names);
    // A stale cluster route (no node has 10.244.99.0/24), node-2's route to
    // the wrong interface, and a route outside the pod network.
    let add = |dst: &str, eni: &str| {
        m.ec2(&[
            "create-route",
            "--route-table-id",
            &w.table,
            "--destination-cidr-block",
            dst,
            "--network-interface-id",
            eni,
        ]);
    };
    add("10.244.99.0/24", &stray);
    add(&subnets["node-2"], &stray);
    add("10.99.0.0/16", &stray);
    let before = routes(&m, &w.table);

    m.record();
    let dry = fg(&m, &["cloud", "apply", &topo, "--dry-run"]);
    assert_eq!(code(&dry), 1, "pending changes: {}{}", stdout(&dry), stderr(&dry));
    let actions = m.recorded_actions();
    assert!(actions.iter().all(|a| !WRITES.contains(&a.as_str())), "a dry run wrote: {actions:?}");
    assert!(actions.iter().any(|a| a == "DescribeRouteTables"), "the recorder saw the dry run: {actions:?}");
    assert_eq!(routes(&m, &w.table), before);

    let out = fg(&m, &["cloud", "apply", &topo, "--endpoint", &m.url, "--region", "us-east-1"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let mut want: BTreeSet<(String, String)> = [
        ("172.31.0.0/16".to_string(), "local".to_string()),
        ("0.0.0.0/0".into(), w.igw.clone()),
        ("10.99.0.0/16".into(), stray.clone()),
    ]
    .into();
    for (n, id) in names.iter().zip(&w.instances) {
        want.insert((subnets[*n].clone(), eni_of(&m, id)));
    }
    assert_eq!(routes(&m, &w.table), want, "one route per node subnet to its instance; foreign routes kept");
    for id in &w.instances {
        assert_eq!(source_dest_check(&m, id), "False", "{id}");
    }

    m.record();
    let again = fg(&m, &["cloud", "apply", &topo, "--format", "json"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    let v: Value = serde_json::from_str(&stdout(&again)).expect("json outcome");
    assert_eq!(v["changes"], serde_json::json!([]), "the second run changes nothing");
    let dry = fg(&m, &["cloud", "apply", &topo, "--dry-run"]);
    assert_eq!(code(&dry), 0, "converged: {}", stdout(&dry));
    let actions = m.recorded_actions();
    assert!(actions.iter().all(|a| !WRITES.contains(&a.as_str())), "a converged table got writes: {actions:?}");
}

#[test]
fn without_route_table_ids_the_subnets_tables_are_found_as_flanneld_does() {
    if !moto::available("without_route_table_ids_the_subnets_tables_are_found_as_flanneld_does") {
        return;
    }
    let m = Moto::start();
    // node-1 in a subnet with its own table; node-2 in a subnet only the
    // VPC's main table serves.
    let w = world(&m, "172.31.16.0/20", &["172.31.16.11"]);
    let other =
        m.ec2(&["create-subnet", "--vpc-id", &w.vpc, "--cidr-block", "172.31.32.0/20", "--query", "Subnet.SubnetId"]);
    let second = instance(&m, &other, "172.31.32.12");
    let main = m.ec2(&[
        "describe-route-tables",
        "--filters",
        &format!("Name=vpc-id,Values={}", w.vpc),
        "Name=association.main,Values=true",
        "--query",
        "RouteTables[0].RouteTableId",
    ]);
    let dir = tempfile::tempdir().expect("tmp");
    let topo =
        topology(dir.path(), None, &[("node-1", "172.31.16.11", &w.instances[0]), ("node-2", "172.31.32.12", &second)]);
    let out = fg(&m, &["cloud", "apply", &topo]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let subnets = subnets(&topo, &["node-1", "node-2"]);
    for table in [&w.table, &main] {
        let r = routes(&m, table);
        assert!(r.contains(&(subnets["node-1"].clone(), eni_of(&m, &w.instances[0]))), "{table}: {r:?}");
        assert!(r.contains(&(subnets["node-2"].clone(), eni_of(&m, &second))), "{table}: {r:?}");
    }
    assert!(
        stdout(&out)
            .contains(&format!("route tables: {}", [&main, &w.table].iter().min().map(|s| s.as_str()).unwrap_or("")))
    );
}

#[test]
fn the_rendered_aws_script_converges_the_table_too() {
    if !moto::available("the_rendered_aws_script_converges_the_table_too") {
        return;
    }
    let m = Moto::start();
    let w = world(&m, "172.31.16.0/20", &["172.31.16.11", "172.31.16.12"]);
    let dir = tempfile::tempdir().expect("tmp");
    for tables in [Some(vec![w.table.as_str()]), None] {
        let topo = topology(
            dir.path(),
            tables.as_deref(),
            &[("node-1", "172.31.16.11", &w.instances[0]), ("node-2", "172.31.16.12", &w.instances[1])],
        );
        let out_dir = dir.path().join("out");
        let out = run(&["cloud", "render", &topo, "--out", &out_dir.to_string_lossy()]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let ran = m.sh(&out_dir.join("aws-vpc-routes.sh"));
        assert!(ran.status.success(), "the script failed: {}", String::from_utf8_lossy(&ran.stderr));
        let dry = fg(&m, &["cloud", "apply", &topo, "--dry-run"]);
        assert_eq!(code(&dry), 0, "after the script, cloud apply has nothing to do: {}", stdout(&dry));
        // Start over for the next form of the script.
        for dst in subnets(&topo, &["node-1", "node-2"]).values() {
            m.ec2(&["delete-route", "--route-table-id", &w.table, "--destination-cidr-block", dst]);
        }
        for id in &w.instances {
            m.ec2(&["modify-instance-attribute", "--instance-id", id, "--source-dest-check"]);
        }
    }
}

#[test]
fn refusals_and_an_unreachable_api_exit_3_saying_what_was_done() {
    if !moto::available("refusals_and_an_unreachable_api_exit_3_saying_what_was_done") {
        return;
    }
    let m = Moto::start();
    let w = world(&m, "172.31.16.0/20", &["172.31.16.11"]);
    let dir = tempfile::tempdir().expect("tmp");
    // A route table the account does not have: refused before any write.
    let topo = topology(dir.path(), Some(&["rtb-0000000000000dead"]), &[("node-1", "172.31.16.11", &w.instances[0])]);
    m.record();
    let out = fg(&m, &["cloud", "apply", &topo]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("InvalidRouteTableID.NotFound") || stdout(&out).contains("rtb-0000000000000dead"),
        "{}",
        stdout(&out)
    );
    let actions = m.recorded_actions();
    assert!(actions.iter().all(|a| !WRITES.contains(&a.as_str())), "{actions:?}");
    // Nobody listens: exit 3 after the retries, nothing claimed done.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let topo = topology(dir.path(), Some(&[w.table.as_str()]), &[("node-1", "172.31.16.11", &w.instances[0])]);
    let started = std::time::Instant::now();
    let out = fg(&m, &["cloud", "apply", &topo, "--endpoint", &format!("http://127.0.0.1:{closed}")]);
    assert_eq!(code(&out), 3, "{}", stdout(&out));
    assert!(stdout(&out).contains("cannot reach"), "{}", stdout(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "retries are bounded");
}

#[test]
fn bad_topologies_call_nothing() {
    if !moto::available("bad_topologies_call_nothing") {
        return;
    }
    let m = Moto::start();
    m.record();
    for bad in ["tests/bad/aws-vpc-missing-instance-id.yaml", "tests/bad/aws-vpc-malformed-ids.yaml"] {
        let out = fg(&m, &["cloud", "apply", bad]);
        assert_eq!(code(&out), 2, "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(&format!("{bad}:")), "located: {}", stderr(&out));
    }
    let out = fg(&m, &["cloud", "apply", "examples/gce-3node.yaml"]);
    assert_eq!(code(&out), 2, "gce has no cloud apply: {}", stderr(&out));
    let out = fg(&m, &["cloud", "apply", "examples/vxlan-3node.yaml"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(m.recorded_actions(), Vec::<String>::new(), "bad input reached the API");
}

#[test]
fn bad_topologies_render_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    for bad in ["tests/bad/gce-missing-project.yaml", "tests/bad/aws-vpc-missing-instance-id.yaml"] {
        let out_dir = dir.path().join("out");
        let out = run(&["cloud", "render", bad, "--out", &out_dir.to_string_lossy()]);
        assert_eq!(code(&out), 2, "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(&format!("{bad}:")), "located: {}", stderr(&out));
        assert!(!out_dir.exists(), "{bad}: something was written");
    }
    let out = run(&["cloud", "render", "examples/vxlan-3node.yaml", "--out", &dir.path().join("v").to_string_lossy()]);
    assert_eq!(code(&out), 2, "vxlan has no cloud routes: {}", stderr(&out));
    assert!(!dir.path().join("v").exists());
}

/// The rendered files of both example clusters, reviewed.
#[test]
fn terraform_and_scripts_are_golden() {
    for example in ["aws-vpc-3node", "gce-3node"] {
        let dir = tempfile::tempdir().expect("tmp");
        let out =
            run(&["cloud", "render", &format!("examples/{example}.yaml"), "--out", &dir.path().to_string_lossy()]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let mut names: Vec<_> =
            std::fs::read_dir(dir.path()).expect("out").map(|e| e.expect("entry").file_name()).collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        for name in names {
            let text = std::fs::read_to_string(dir.path().join(&name)).expect("read");
            golden(&root().join("golden/cloud").join(example).join(&name), &text);
        }
        let script = ["aws-vpc-routes.sh", "gce-routes.sh"].iter().map(|s| dir.path().join(s)).find(|p| p.exists());
        let syntax = std::process::Command::new("sh").arg("-n").arg(script.expect("a script")).status().expect("sh -n");
        assert!(syntax.success(), "{example}: the script is not valid sh");
    }
}

/// Every route in the Terraform JSON, read back, is the plan's: the node's
/// lease subnet, its instance, the route tables; nothing more.
#[test]
fn terraform_json_reads_back_as_the_plan() {
    let dir = tempfile::tempdir().expect("tmp");
    for example in ["aws-vpc-3node", "gce-3node"] {
        let topo = format!("examples/{example}.yaml");
        let out_dir = dir.path().join(example);
        let out = run(&["cloud", "render", &topo, "--out", &out_dir.to_string_lossy()]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let text = std::fs::read_to_string(out_dir.join("flannel-routes.tf.json")).expect("tf.json");
        let tf: Value = serde_json::from_str(&text).expect("valid JSON");
        let yaml = std::fs::read_to_string(root().join(&topo)).expect("topology");
        let names = ["node-1", "node-2", "node-3"];
        let subnets = subnets(&topo, &names);
        if example.starts_with("aws") {
            let routes = tf["resource"]["aws_route"].as_object().expect("aws_route");
            assert_eq!(routes.len(), names.len());
            let tables = &tf["locals"]["flannel-prod-aws-route-tables"];
            assert_eq!(tables, "${toset([\"rtb-0a1b2c3d4e5f60718\"])}");
            for n in names {
                let r = &routes[&format!("flannel-prod-aws-{n}")];
                assert_eq!(r["destination_cidr_block"], subnets[n].as_str(), "{n}");
                assert_eq!(r["for_each"], "${local.flannel-prod-aws-route-tables}");
                assert_eq!(r["route_table_id"], "${each.value}");
                let data = r["network_interface_id"]
                    .as_str()
                    .and_then(|s| s.strip_prefix("${data.aws_instance."))
                    .and_then(|s| s.strip_suffix(".network_interface_id}"))
                    .expect("an aws_instance reference");
                let id = tf["data"]["aws_instance"][data]["instance_id"].as_str().expect("instance_id");
                let want = yaml
                    .lines()
                    .skip_while(|l| !l.contains(&format!("name: {n}")))
                    .find_map(|l| l.trim().strip_prefix("instanceID: "));
                assert_eq!(Some(id), want, "{n}");
            }
        } else {
            let routes = tf["resource"]["google_compute_route"].as_object().expect("google_compute_route");
            assert_eq!(routes.len(), names.len());
            for n in names {
                let name = format!("flannel-{}", subnets[n].replace(['.', '/'], "-"));
                let r = &routes[&name];
                assert_eq!(r["name"], name.as_str());
                assert_eq!(r["dest_range"], subnets[n].as_str());
                assert_eq!(r["next_hop_instance"], n, "the example's instances are named after the nodes");
                assert_eq!(r["priority"], 1000);
                assert_eq!(r["project"], "flannel-gen-demo");
                assert_eq!(r["network"], "default");
                let zone = yaml
                    .lines()
                    .skip_while(|l| !l.contains(&format!("name: {n}")))
                    .find_map(|l| l.trim().strip_prefix("zone: "));
                assert_eq!(r["next_hop_instance_zone"].as_str(), zone, "{n}");
            }
        }
    }
}

/// On a node, credentials and region come from the instance metadata
/// service (IMDSv2; moto's server answers it too, with its test role).
#[test]
fn an_instance_role_from_the_metadata_service_signs_the_calls() {
    if !moto::available("an_instance_role_from_the_metadata_service_signs_the_calls") {
        return;
    }
    let m = Moto::start();
    let w = world(&m, "172.31.16.0/20", &["172.31.16.11"]);
    let dir = tempfile::tempdir().expect("tmp");
    let topo = topology(dir.path(), Some(&[w.table.as_str()]), &[("node-1", "172.31.16.11", &w.instances[0])]);
    let on_node = |extra: &[(&str, &str)]| {
        let mut cmd = common::bin();
        cmd.args(["cloud", "apply", &topo, "--dry-run", "--endpoint", &m.url]).current_dir(root());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
            cmd.env_remove(k);
        }
        cmd.env("AWS_CONFIG_FILE", "/dev/null").env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        cmd.envs(extra.iter().copied());
        cmd.output().expect("flannel-gen")
    };
    m.record();
    let out = on_node(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", m.url.as_str())]);
    assert_eq!(code(&out), 1, "pending, with the role's credentials: {}{}", stdout(&out), stderr(&out));
    let signed: Vec<String> = m.recorded().into_iter().filter(|(a, _)| a.is_some()).map(|(_, auth)| auth).collect();
    assert!(!signed.is_empty());
    assert!(signed.iter().all(|a| a.contains("Credential=test-key/") && a.contains("/us-east-1/ec2/")), "{signed:?}");

    // Nothing in the chain: exit 2, nothing called.
    m.record();
    let out = on_node(&[("AWS_EC2_METADATA_DISABLED", "true"), ("AWS_REGION", "us-east-1")]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("no credentials"), "{}", stderr(&out));
    assert_eq!(m.recorded_actions(), Vec::<String>::new());
}
