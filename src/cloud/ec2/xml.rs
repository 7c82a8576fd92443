//! EC2's XML answers (API version 2016-11-15), the parts aws-vpc reads:
//! instances with their primary interface, route tables with their routes,
//! and error bodies. Element names are matched without their namespace.

use ipnet::Ipv4Net;
use roxmltree::{Document, Node};

/// A node's instance as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// The primary network interface (device index 0): the route target.
    pub eni: String,
    pub subnet: String,
    pub vpc: String,
    pub source_dest_check: bool,
}

/// A route in a table, as far as the owner rule and the plan care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRoute {
    pub dst: Ipv4Net,
    /// The target: a network interface, instance or gateway id.
    pub target: String,
    pub eni: Option<String>,
    /// Made by `CreateRoute` (not the VPC's local route, not propagated).
    pub created: bool,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub id: String,
    pub routes: Vec<LiveRoute>,
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text(n: Node, name: &str) -> Option<String> {
    child(n, name).and_then(|c| c.text()).map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

/// The `item`s of the set `name` under `n`.
fn items<'a, 'i>(n: Node<'a, 'i>, name: &str) -> impl Iterator<Item = Node<'a, 'i>> {
    child(n, name).into_iter().flat_map(|s| s.children().filter(|c| c.is_element() && c.tag_name().name() == "item"))
}

fn parse(xml: &str) -> Result<Document<'_>, String> {
    Document::parse(xml).map_err(|e| e.to_string())
}

/// DescribeInstances: every instance of every reservation.
pub fn instances(xml: &str) -> Result<Vec<Instance>, String> {
    let doc = parse(xml)?;
    let mut out = Vec::new();
    for r in items(doc.root_element(), "reservationSet") {
        for i in items(r, "instancesSet") {
            let id = text(i, "instanceId").ok_or("an instance without instanceId")?;
            let nics: Vec<Node> = items(i, "networkInterfaceSet").collect();
            let index = |n: &Node| child(*n, "attachment").and_then(|a| text(a, "deviceIndex"));
            let primary = nics.iter().find(|n| index(n).as_deref() == Some("0")).or(nics.first());
            out.push(Instance {
                eni: primary.and_then(|n| text(*n, "networkInterfaceId")).unwrap_or_default(),
                subnet: text(i, "subnetId").unwrap_or_default(),
                vpc: text(i, "vpcId").unwrap_or_default(),
                source_dest_check: text(i, "sourceDestCheck").is_none_or(|v| v != "false"),
                id,
            });
        }
    }
    Ok(out)
}

/// DescribeRouteTables: each table with its IPv4 routes.
pub fn route_tables(xml: &str) -> Result<Vec<Table>, String> {
    let doc = parse(xml)?;
    let mut out = Vec::new();
    for t in items(doc.root_element(), "routeTableSet") {
        let id = text(t, "routeTableId").ok_or("a route table without routeTableId")?;
        let routes = items(t, "routeSet").filter_map(route).collect();
        out.push(Table { id, routes });
    }
    Ok(out)
}

fn route(r: Node) -> Option<LiveRoute> {
    let dst = text(r, "destinationCidrBlock")?.parse().ok()?;
    let eni = text(r, "networkInterfaceId");
    let gateway = text(r, "gatewayId");
    let target = ["networkInterfaceId", "instanceId", "gatewayId", "natGatewayId", "transitGatewayId"]
        .iter()
        .find_map(|k| text(r, k))
        .unwrap_or_else(|| "?".into());
    Some(LiveRoute {
        dst,
        target,
        eni,
        created: text(r, "origin").as_deref() == Some("CreateRoute") && gateway.as_deref() != Some("local"),
        active: text(r, "state").is_none_or(|s| s == "active"),
    })
}

/// An error body's first code and message.
pub fn error(xml: &str) -> Option<(String, String)> {
    let doc = Document::parse(xml).ok()?;
    let e = doc.descendants().find(|n| n.is_element() && n.tag_name().name() == "Error")?;
    Some((text(e, "Code")?, text(e, "Message").unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shaped after the EC2 API reference's DescribeRouteTables example
    // (docs.aws.amazon.com/AWSEC2/latest/APIReference), trimmed.
    const TABLES: &str = r#"<DescribeRouteTablesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <routeTableSet><item><routeTableId>rtb-0123abcd</routeTableId><routeSet>
    <item><destinationCidrBlock>172.31.0.0/16</destinationCidrBlock><gatewayId>local</gatewayId><state>active</state><origin>CreateRouteTable</origin></item>
    <item><destinationCidrBlock>10.244.1.0/24</destinationCidrBlock><networkInterfaceId>eni-1</networkInterfaceId><state>blackhole</state><origin>CreateRoute</origin></item>
    <item><destinationIpv6CidrBlock>::/0</destinationIpv6CidrBlock><gatewayId>igw-1</gatewayId><origin>CreateRoute</origin></item>
  </routeSet></item></routeTableSet></DescribeRouteTablesResponse>"#;

    #[test]
    fn route_tables_keep_ipv4_routes_with_origin_and_state() {
        let t = route_tables(TABLES).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].routes.len(), 2, "the IPv6 route is not aws-vpc's");
        assert!(!t[0].routes[0].created, "the local route is never flannel-gen's");
        assert!(t[0].routes[1].created && !t[0].routes[1].active);
        assert_eq!(t[0].routes[1].eni.as_deref(), Some("eni-1"));
    }

    #[test]
    fn instances_take_the_interface_at_device_index_zero() {
        let xml = r#"<R><reservationSet><item><instancesSet><item><instanceId>i-1</instanceId><subnetId>subnet-1</subnetId>
          <vpcId>vpc-1</vpcId><sourceDestCheck>false</sourceDestCheck><networkInterfaceSet>
          <item><networkInterfaceId>eni-2</networkInterfaceId><attachment><deviceIndex>1</deviceIndex></attachment></item>
          <item><networkInterfaceId>eni-1</networkInterfaceId><attachment><deviceIndex>0</deviceIndex></attachment></item>
          </networkInterfaceSet></item></instancesSet></item></reservationSet></R>"#;
        let i = instances(xml).unwrap();
        assert_eq!((i[0].eni.as_str(), i[0].source_dest_check), ("eni-1", false));
    }

    #[test]
    fn errors_and_garbage() {
        let e = "<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>no</Message></Error></Errors></Response>";
        assert_eq!(error(e), Some(("InvalidInstanceID.NotFound".into(), "no".into())));
        assert!(error("<html>").is_none());
        assert!(route_tables("not xml").is_err());
    }
}
