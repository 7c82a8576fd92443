#!/bin/sh
# flannel-gen: the gce routes of cluster prod-gce (pod network 10.244.0.0/16).
# Needs gcloud and credentials. Per node, flanneld's route: a route of another
# next hop is deleted and inserted again. Stale routes stay.
set -eu

# route NAME RANGE INSTANCE ZONE
route() {
  if hop=$(gcloud compute routes describe "$1" --project=flannel-gen-demo --format='value(nextHopInstance)' 2>/dev/null); then
    case "$hop" in */zones/"$4"/instances/"$3") return 0 ;; esac
    gcloud compute routes delete "$1" --project=flannel-gen-demo --quiet
  fi
  gcloud compute routes create "$1" --project=flannel-gen-demo --network=default --destination-range="$2" \
    --next-hop-instance="$3" --next-hop-instance-zone="$4" --priority=1000
}

# node-1
route flannel-10-244-1-0-24 10.244.1.0/24 node-1 us-central1-a

# node-2
route flannel-10-244-2-0-24 10.244.2.0/24 node-2 us-central1-b

# node-3
route flannel-10-244-3-0-24 10.244.3.0/24 node-3 europe-west1-b
