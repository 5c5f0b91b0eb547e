//! Loading the image into a kind, k3d or minikube cluster with that tool's own command.
use std::process::Stdio;

use tokio::process::Command;

use crate::error::{Error, Result};
use crate::plan::image::LocalCluster;
use crate::ui::Printer;
use crate::ui::progress::Step;

/// Runs e.g. `kind load docker-image REF --name CLUSTER`; a failure carries the tool's stderr.
pub async fn load(
    cluster: &LocalCluster,
    reference: &str,
    docker_host: &str,
    printer: &Printer,
) -> Result<()> {
    let tool = cluster.tool();
    let args = cluster.load_args(reference);
    let shown = format!("{tool} {}", args.join(" "));
    printer.debug(format!("running {shown}"));
    let step = Step::start(
        printer,
        format!("loading {reference} into the {tool} cluster"),
    );
    let output = Command::new(tool)
        .args(&args)
        // The tools talk to the daemon through the docker CLI; point them at the one that built.
        .env("DOCKER_HOST", docker_host)
        .stdin(Stdio::null())
        .output()
        .await;
    let output =
        match output {
            Ok(output) => output,
            Err(e) => {
                step.fail();
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    format!("{tool} is not on PATH")
                } else {
                    e.to_string()
                };
                return Err(Error::step("image load", format!("`{shown}` could not run: {why}"))
                .with_hint(format!(
                    "install {tool}, or set KOVENANT_IMAGE_REGISTRY to push the image instead"
                )));
            }
        };
    if !output.status.success() {
        step.fail();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let said = if stderr.trim().is_empty() {
            stdout.trim().to_string()
        } else {
            stderr.trim().to_string()
        };
        return Err(Error::step(
            "image load",
            format!("`{shown}` failed ({}): {said}", output.status),
        ));
    }
    step.finish("done");
    Ok(())
}
