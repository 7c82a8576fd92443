#!/bin/sh
# flannel-gen: the aws-vpc routes of cluster prod-aws (pod network 10.244.0.0/16).
# Needs the aws CLI and credentials (AWS_ENDPOINT_URL, AWS_REGION, ...). Per node:
# source/dest check off, and its subnet routed to its primary network interface
# in every route table. Stale routes stay: `flannel-gen cloud apply` removes them.
set -eu

# The instance's primary network interface: flanneld's route target.
eni() {
  aws ec2 describe-instances --instance-ids "$1" --output text \
    --query 'Reservations[0].Instances[0].NetworkInterfaces[?Attachment.DeviceIndex==`0`].NetworkInterfaceId | [0]'
}

# The route table of the instance's subnet, else its VPC's main one (as flanneld finds it).
table_of() {
  subnet=$(aws ec2 describe-instances --instance-ids "$1" --output text --query 'Reservations[0].Instances[0].SubnetId')
  vpc=$(aws ec2 describe-instances --instance-ids "$1" --output text --query 'Reservations[0].Instances[0].VpcId')
  t=$(aws ec2 describe-route-tables --filters "Name=association.subnet-id,Values=$subnet" --output text \
    --query 'RouteTables[0].RouteTableId')
  if [ "$t" = None ]; then
    t=$(aws ec2 describe-route-tables --filters "Name=vpc-id,Values=$vpc" "Name=association.main,Values=true" \
      --output text --query 'RouteTables[0].RouteTableId')
  fi
  echo "$t"
}

# route TABLE CIDR ENI: replace the route, or create it.
route() {
  aws ec2 replace-route --route-table-id "$1" --destination-cidr-block "$2" --network-interface-id "$3" 2>/dev/null ||
    aws ec2 create-route --route-table-id "$1" --destination-cidr-block "$2" --network-interface-id "$3" >/dev/null
}

tables="rtb-0a1b2c3d4e5f60718"

# node-1: 10.244.1.0/24
aws ec2 modify-instance-attribute --instance-id i-0a1b2c3d4e5f60001 --no-source-dest-check
nic=$(eni i-0a1b2c3d4e5f60001)
for t in $tables; do route "$t" 10.244.1.0/24 "$nic"; done

# node-2: 10.244.2.0/24
aws ec2 modify-instance-attribute --instance-id i-0a1b2c3d4e5f60002 --no-source-dest-check
nic=$(eni i-0a1b2c3d4e5f60002)
for t in $tables; do route "$t" 10.244.2.0/24 "$nic"; done

# node-3: 10.244.3.0/24
aws ec2 modify-instance-attribute --instance-id i-0a1b2c3d4e5f60003 --no-source-dest-check
nic=$(eni i-0a1b2c3d4e5f60003)
for t in $tables; do route "$t" 10.244.3.0/24 "$nic"; done
