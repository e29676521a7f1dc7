//! Shared set-up for the benches: a service on a fresh store with production
//! workspace `bench` holding one collection (made in a preview, promoted).

use mcp_factory::service::collections::UpsertCollection;
use mcp_factory::service::workspaces::{CreatePreview, CreateWorkspace};
use mcp_factory::service::{Caller, Service};
use mcp_factory::store::Store;
use serde_json::Value;

pub async fn service_with(
    dir: &std::path::Path,
    collection: &str,
    schema: Value,
) -> (Service, Caller) {
    let service = Service::new(Store::open(dir).expect("store")).expect("service");
    let sys = Caller::system();
    let ws = CreateWorkspace {
        id: "bench".into(),
        name: None,
        description: None,
    };
    service.create_workspace(&sys, ws).await.expect("workspace");
    let preview = CreatePreview {
        name: "dev".into(),
        description: None,
    };
    service
        .create_preview(&sys, "bench", preview)
        .await
        .expect("preview");
    let coll = UpsertCollection {
        name: None,
        description: None,
        schema,
    };
    service
        .upsert_collection(&sys, "bench--dev", collection, coll)
        .await
        .expect("collection");
    service
        .promote(&sys, "bench", "bench--dev", false)
        .await
        .expect("promote");
    (service, sys)
}
