//! Pure: Config (+ what the cluster reports) -> Plan (releases, objects, image, dashboards).
