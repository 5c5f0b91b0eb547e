//! `kovenant install`: preflight, plan, preview, confirm, then converge in dependency order.
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::preview::{self, Change, Existing, Preview};
use super::{image, objects, preflight, repos, secrets, summary, tokens, unlock};
use crate::assets::Assets;
use crate::backend::docker::AgentBinary;
use crate::backend::helm::{ChartArgs, Helm};
use crate::backend::kube::Kube;
use crate::cli::{GlobalArgs, InstallArgs, OutputFormat, Part};
use crate::cluster::wait::{self, Deadline};
use crate::cluster::{lease, session};
use crate::error::{Error, Result};
use crate::plan::Rendered;
use crate::plan::dashboards::ClusterFacts;
use crate::plan::names::POLICY_CRD;
use crate::plan::secrets as secrets_plan;
use crate::plan::steps::{self, Plan, ReleaseStep};
use crate::ui::Printer;
use crate::ui::progress::Step;

/// How long Tetragon's operator may take to establish its CRD (within `--timeout`).
const CRD_WAIT: Duration = Duration::from_secs(120);

/// `--timeout` bounds the whole run (but the time the user takes to answer the prompt): what
/// still runs then is stopped, helm included.
pub async fn run(global: &GlobalArgs, args: &InstallArgs, printer: &Printer) -> Result<()> {
    let deadline = Deadline::after(args.timeout);
    deadline
        .bound(
            "install",
            wait::HELM_OVERRUN,
            within(global, args, printer, deadline),
            || session::probe(global),
        )
        .await
}

/// What the lock step does, from the flags.
fn take(args: &InstallArgs) -> lease::Take {
    if args.force_unlock {
        lease::Take::Force
    } else if args.no_lock_wait {
        lease::Take::Refuse
    } else {
        lease::Take::Wait
    }
}

async fn within(
    global: &GlobalArgs,
    args: &InstallArgs,
    printer: &Printer,
    deadline: Deadline,
) -> Result<()> {
    let started = Instant::now();
    if args.skip_image && args.only.contains(&Part::Image) {
        return Err(Error::usage(
            "--skip-image and --only image contradict each other",
            Some("drop one: --only image builds the image, --skip-image leaves it out".into()),
        ));
    }
    let json = args.output == OutputFormat::Json;
    if json && !args.dry_run {
        return Err(Error::usage(
            "-o json prints the plan of a dry run, and this is not one",
            Some(
                "add --dry-run to save the plan: kovenant install --dry-run -o json > plan.json"
                    .into(),
            ),
        ));
    }
    let config = session::config(global, &args.env, printer)?;
    let helm = session::helm(global, &config);
    helm.stop_at(move || deadline.at());
    let wants_image =
        !args.skip_image && (args.only.is_empty() || args.only.contains(&Part::Image));
    // A dry run checks all a real install checks (Docker and the image's way into the cluster
    // included), so it fails where the install would.
    // The content tag, computed without Docker: what the preview diffs and what ensure_image
    // makes; its platform is the binary's, which preflight checks against the nodes'.
    let binary = AgentBinary::read(args.agent_binary.as_deref())?;
    let image = crate::plan::image::agent_image(&config, &binary.path, &binary.bytes);
    let checks = preflight::run(global, &config, &helm, wants_image, &binary, printer).await;
    let assets = match &global.assets {
        Some(dir) => Assets::from_dir(dir)?,
        None => Assets::embedded(),
    };
    if let Some(w) = &image.warning {
        printer.warn(w);
    }
    let agent_arch = image.arch;
    // --skip-image leaves the image to the user; with no registry and no local cluster to load
    // it into, nothing puts it where a real node would look for an unqualified reference.
    if args.skip_image
        && let Some(k) = &checks.kube
        && crate::plan::image::delivery_for_context(&config, &k.context).is_err()
    {
        printer.warn(format!(
            "--skip-image without KOVENANT_IMAGE_REGISTRY, and context {} is not a kind, k3d or \
             minikube cluster: a real node pulls {} from Docker Hub, which does not have it; set \
             KOVENANT_IMAGE_REGISTRY to where you pushed it",
            k.context, image.reference
        ));
    }
    let image_ref = image.reference;
    // InfluxDB's scoped tokens as they are (read only): their generations go into the pod
    // templates of their holders, so the preview shows the restart a new token brings.
    let tokens = match &checks.kube {
        Some(kube) if wants_tokens(&args.only) && checks.failures == 0 && !args.check_only => {
            let holder = |scope: &secrets_plan::Scope| {
                let part = if *scope == secrets_plan::TELEGRAF_TOKEN {
                    Part::Pipeline
                } else {
                    Part::Grafana
                };
                args.only.is_empty() || args.only.contains(&part)
            };
            tokens::inspect(kube, &config, args.rotate_credentials)
                .await?
                .only_for(holder)
        }
        _ => tokens::Tokens::none(),
    };
    let mut facts = match &checks.kube {
        Some(kube) => cluster_facts(kube, printer).await,
        None => ClusterFacts::default(),
    };
    facts.agent_arch = agent_arch;
    facts.token_generations = match &config.influxdb.external_token {
        // An InfluxDB of the user's own: its one token, from .env. Its holders carry a digest of
        // it (64 bits of SHA-256 of a token: nothing to learn the token from), so a new token in
        // .env restarts exactly them.
        Some(t) if config.influxdb.url.is_some() => {
            let digest = <sha2::Sha256 as sha2::Digest>::digest(t.expose().as_bytes());
            let g = u64::from_be_bytes(digest[..8].try_into().unwrap_or_default());
            [g, g]
        }
        _ => [
            tokens.generation(&secrets_plan::TELEGRAF_TOKEN),
            tokens.generation(&secrets_plan::GRAFANA_TOKEN),
        ],
    };
    let rendered = crate::plan::render_all_with(&config, &assets, &image_ref, &facts)?;
    let plan = steps::build(&config, &rendered, &args.only)?;
    if args.check_only {
        return match checks.failures {
            0 => {
                printer.success("all preflight checks passed");
                Ok(())
            }
            n => Err(preflight_failed(n)),
        };
    }
    let delivery = checks.delivery;
    let kube = match (checks.kube, checks.failures) {
        (Some(k), 0) => k,
        (_, n) if args.dry_run => {
            // A dry run's plan is its data: on stdout, kept by -q, ready to pipe.
            if json {
                printer.stdout(plan_json(&plan, None));
            } else {
                preview::print(&printer.as_data(), &plan, None, args.diff);
            }
            if wants_image && !json {
                let line = image::describe(&image_ref, delivery.as_ref());
                printer.stdout(format!("  {:>9}  {line}", "ensure"));
            }
            printer.warn(
                "this is the plan from the configuration alone, without the preview of changes \
                 (it needs every preflight check to pass)",
            );
            return Err(Error::step(
                "dry run",
                format!("{n} preflight check(s) failed, so the install would fail (see above)"),
            )
            .with_hint("fix what the failed checks say; nothing was changed"));
        }
        (_, n) => return Err(preflight_failed(n)),
    };
    // One run at a time on these namespaces: what helm has, the preview and the unlock of a
    // pending release are read under the lock. A dry run changes nothing and only reads it.
    let mut locked = namespaces_used(&plan);
    if !locked.contains(&config.namespace.as_str()) {
        locked.push(&config.namespace);
    }
    if args.dry_run {
        for ns in &locked {
            if let Some(h) = lease::holder(&kube, ns).await? {
                printer.warn(format!(
                    "another kovenant run holds the lock on namespace {ns}: {}; what it changes \
                     may not show in this preview",
                    h.describe(k8s_openapi::jiff::Timestamp::now())
                ));
            }
        }
    } else {
        lease::acquire(&kube, &locked, "install", take(args), deadline, printer).await?;
    }
    // A namespace still being deleted (say, just after `uninstall --purge`) refuses new content:
    // wait until it is gone, before the preview reads what it still holds.
    for ns in namespaces_used(&plan) {
        if wait::namespace_terminating(&kube, ns).await? {
            let step = Step::start(
                printer,
                format!("Waiting for namespace {ns} to finish terminating"),
            );
            finish(
                step,
                wait::namespace_gone(&kube, ns, deadline.left()).await,
                "gone",
            )?;
        }
    }
    let tree = write_tree(&rendered)?;
    let (existing, missing_repos) =
        tokio::join!(Existing::list(&helm, &plan), repos::check(&helm, &plan));
    let (existing, missing_repos) = (existing?, missing_repos?);
    // helm-diff reads an existing release's chart from its repository: on a machine that has
    // never added it (or whose cached index predates the pinned version), the repositories come
    // first.
    let repos_fetched = repos::needed_for_diff(&plan, &existing);
    if repos_fetched {
        repos::fetch(&helm, &missing_repos, printer).await?;
    }
    let step = Step::start(
        printer,
        "Previewing changes (helm diff, server-side dry run)",
    );
    let preview = match preview::run(&kube, &helm, &plan, &existing, &tree).await {
        Ok(p) => {
            step.finish("done");
            p
        }
        Err(e) => {
            step.fail();
            return Err(e);
        }
    };
    // The plan is the command's data, dry run or not: on stdout, kept by -q (the README says
    // so), and what a user reviews before answering the prompt.
    let plan_out = printer.as_data();
    if json {
        printer.stdout(plan_json(&plan, Some(&preview)));
    } else {
        preview::print(&plan_out, &plan, Some(&preview), args.diff);
    }
    // JSON holds the plan; the lines below are for people.
    let plan_out = if json { printer.clone() } else { plan_out };
    for t in tokens.changing() {
        let (tag, why) = match &t.verdict {
            tokens::Verdict::Rotate => ("rotate", "--rotate-credentials".to_owned()),
            tokens::Verdict::Create(why) => ("create", why.clone()),
            tokens::Verdict::Keep => continue,
        };
        plan_out.info(format!(
            "  {tag:>9}  InfluxDB token of {} ({} on the buckets) in Secret {}/{}: {why}",
            t.scope.holder, t.scope.action, config.namespace, t.scope.secret
        ));
    }
    let image_needed = wants_image && image::needed(&args.only, &plan, &preview);
    if image_needed {
        let line = image::describe(&image_ref, delivery.as_ref());
        plan_out.info(format!("  {:>9}  {line}", "ensure"));
    }
    if preview.is_noop() && !image_needed && tokens.changing().next().is_none() {
        printer.success("nothing to do: the cluster already matches the configuration");
        timing(printer, started, &helm);
        return Ok(());
    }
    if args.dry_run {
        printer.info("dry run: nothing was changed");
        return Ok(());
    }
    let question = format!(
        "Apply these changes to context {} ({})?",
        kube.context, kube.server
    );
    let asked = Instant::now();
    let answer = crate::ui::prompt::confirm(printer, &question, args.yes).await;
    wait::paused(asked.elapsed());
    if !answer? {
        // A "no" is the user's answer, not a failure: exit 0 (README, exit codes).
        printer.always("cancelled: nothing was changed");
        return Ok(());
    }
    let ensured = match delivery.filter(|_| image_needed) {
        Some(delivery) => Some(
            image::ensure(
                &config,
                args.agent_binary.as_deref(),
                delivery,
                &image_ref,
                printer,
            )
            .await?,
        ),
        None => None,
    };
    // Grafana takes its admin password only when its database is new: a changed one in .env
    // reaches the Secret, not the running Grafana (no Grafana can run in kovenant's tests to
    // check a reset through its API, so install says what to run instead of doing it).
    let grafana_password_changed = match &config.grafana.admin_password {
        Some(wanted)
            if plan
                .secrets
                .iter()
                .any(|s| s.name == secrets_plan::GRAFANA_SECRET) =>
        {
            kube.secret_value(
                &config.namespace,
                secrets_plan::GRAFANA_SECRET,
                secrets_plan::GRAFANA_PASSWORD_KEY,
            )
            .await
            .is_some_and(|kept| kept != wanted.expose())
        }
        _ => false,
    };
    let converging = Converging {
        kube: &kube,
        helm: &helm,
        plan: &plan,
        preview: &preview,
        existing: &existing,
        tree: &tree,
        deadline,
        missing_repos: (!repos_fetched).then_some(&missing_repos),
        config: &config,
        tokens: &tokens,
    };
    let retired = converge(&converging, printer).await?;
    for (r, _) in plan.releases.iter().zip(&preview.releases) {
        let step = Step::start(printer, format!("release {}", r.name));
        match wait::ready(&kube, &r.namespace, &r.name, deadline).await {
            Ok(()) => step.finish("ready"),
            Err(e) => {
                step.fail();
                return Err(e);
            }
        }
    }
    // telegraf and Grafana run with their new tokens: the old ones may go.
    if !retired.is_empty() {
        let step = Step::start(printer, "Deleting the replaced InfluxDB tokens");
        finish(
            step,
            tokens::retire(&kube, &config, &retired).await,
            "deleted",
        )?;
    }
    if grafana_password_changed {
        let ns = &config.namespace;
        printer.warn(format!(
            "GRAFANA_ADMIN_PASSWORD changed: Secret {ns}/{} holds the new one, but a running \
             Grafana keeps the password its database was made with. Set it there too: \
             kubectl -n {ns} get secret {} -o jsonpath='{{.data.{}}}' | base64 -d | kubectl -n {ns} \
             exec -i deploy/grafana -c grafana -- grafana cli admin reset-admin-password \
             --password-from-stdin",
            secrets_plan::GRAFANA_SECRET,
            secrets_plan::GRAFANA_SECRET,
            secrets_plan::GRAFANA_PASSWORD_KEY
        ));
    }
    summary::print(printer, &config, &plan, &preview, ensured.as_ref(), &tokens);
    timing(printer, started, &helm);
    Ok(())
}

/// The JSON plan of `--dry-run -o json`, pretty-printed.
fn plan_json(plan: &Plan, preview: Option<&Preview>) -> String {
    serde_json::to_string_pretty(&preview::json(plan, preview)).unwrap_or_default()
}

/// Every namespace the plan writes into: kovenant's own and each release's.
fn namespaces_used(plan: &Plan) -> Vec<&str> {
    let mut out: Vec<&str> = plan.namespaces.iter().map(String::as_str).collect();
    for r in &plan.releases {
        if !out.contains(&r.namespace.as_str()) {
            out.push(&r.namespace);
        }
    }
    out
}

/// What the dashboards use from the cluster: its namespaces. Without them the dashboards still
/// work (they open on all namespaces), so a refused list is a warning.
async fn cluster_facts(kube: &Kube, printer: &Printer) -> ClusterFacts {
    match kube.namespace_names().await {
        Ok(namespaces) => ClusterFacts {
            namespaces,
            ..ClusterFacts::default()
        },
        Err(e) => {
            printer.warn(format!(
                "cannot list namespaces ({e}); the dashboards will open on all namespaces"
            ));
            ClusterFacts::default()
        }
    }
}

/// `--verbose`: the wall time, and how much of it helm took (DESIGN.md section 7 budgets the rest).
fn timing(printer: &Printer, started: Instant, helm: &Helm) {
    let total = started.elapsed().as_millis();
    let helm = helm.busy().as_millis();
    printer.debug(format!(
        "took {total} ms: helm {helm} ms, kovenant itself {} ms",
        total.saturating_sub(helm)
    ));
}

fn preflight_failed(n: usize) -> Error {
    Error::step("preflight", format!("{n} check(s) failed (see above)"))
        .with_hint("fix what the failed checks say and run kovenant install again")
}

/// Writes the rendered tree to the run's private folder (removed when the run ends, however it
/// ends): files 0600, so values never reach helm through its command line and no other user can
/// read them.
fn write_tree(rendered: &Rendered) -> Result<std::path::PathBuf> {
    let dir = crate::cluster::run_dir::path()?.join("tree");
    for (rel, bytes) in &rendered.files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("writing", &path, e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io("writing", &path, e))?;
    }
    Ok(dir)
}

/// One release: unlocked first if a helm left it pending, then `helm upgrade --install --wait`
/// with what is left of `--timeout`, stopped early when a pod fails for good.
/// `values_override`: values to install with instead of the release's file (the pipeline's
/// first pass).
async fn upgrade(
    c: &Converging<'_>,
    r: &ReleaseStep,
    printer: &Printer,
    values_override: Option<&str>,
) -> Result<()> {
    let Converging {
        kube,
        helm,
        tree,
        deadline,
        ..
    } = *c;
    if let Some(existing) = c.existing.get(r)
        && let Some(how) = unlock::needed(existing)
    {
        unlock::run(helm, existing, how, deadline.left(), printer).await?;
    }
    let (chart, version) = preview::chart_arg(r, tree);
    let values = match values_override {
        Some(text) => {
            let path = tree.join(format!("{}.first-pass.yaml", r.name));
            std::fs::write(&path, text).map_err(|e| Error::io("writing", &path, e))?;
            path
        }
        None => tree.join(&r.values),
    };
    let args = ChartArgs {
        release: &r.name,
        namespace: &r.namespace,
        chart: &chart,
        version: version.as_deref(),
        values: &values,
    };
    let out = tokio::select! {
        out = helm.upgrade(&args, deadline.left()) => out,
        err = wait::watch_for_fatal(kube, &r.namespace, &r.name) => return Err(err),
    };
    match out {
        // helm's own words (a timeout, say) say little of why: add what is not ready (when the
        // API server answers at once: a frozen one must not hold the error up).
        Err(Error::Step {
            step,
            message,
            hint,
        }) => {
            let pods = tokio::time::timeout(
                Duration::from_secs(2),
                wait::not_ready_pods(kube, &r.namespace, &r.name),
            )
            .await
            .unwrap_or_default();
            Err(Error::Step {
                message: message + &pods,
                step,
                hint,
            })
        }
        out => out,
    }
}

/// What converge works from: the plan, its preview, the rendered tree, the deadline.
struct Converging<'a> {
    kube: &'a Kube,
    helm: &'a Helm,
    plan: &'a Plan,
    preview: &'a Preview,
    /// What helm had when the preview ran.
    existing: &'a Existing,
    tree: &'a Path,
    deadline: Deadline,
    /// What the repositories lack, unless the preview already fetched it (for its diffs).
    missing_repos: Option<&'a repos::Missing>,
    config: &'a crate::config::Config,
    tokens: &'a tokens::Tokens,
}

/// Whether install looks after InfluxDB's scoped tokens: with every part, or a part that holds or
/// makes one.
fn wants_tokens(only: &[Part]) -> bool {
    only.is_empty()
        || only
            .iter()
            .any(|p| matches!(p, Part::Secrets | Part::Pipeline | Part::Grafana))
}

/// Applies the plan; returns the InfluxDB authorizations that new tokens replaced (deleted once
/// the releases are ready).
async fn converge(c: &Converging<'_>, printer: &Printer) -> Result<Vec<String>> {
    let Converging {
        kube,
        helm,
        plan,
        preview,
        deadline,
        missing_repos,
        ..
    } = *c;
    for ns in &plan.namespaces {
        secrets::ensure_namespace(kube, ns, &plan.namespace_labels).await?;
    }
    for s in &plan.secrets {
        let change = secrets::ensure(kube, s).await?;
        if change != Change::Unchanged {
            printer.success(format!("Secret {}/{} {change}d", s.namespace, s.name));
        }
    }
    let changing: Vec<&ReleaseStep> = plan
        .releases
        .iter()
        .zip(&preview.releases)
        .filter(|(_, c)| **c != Change::Unchanged)
        .map(|(r, _)| r)
        .collect();
    if let Some(missing) = missing_repos
        && changing.iter().any(|r| repos::from_repo(r))
    {
        repos::fetch(helm, missing, printer).await?;
    }
    let (first, rest): (Vec<&ReleaseStep>, Vec<&ReleaseStep>) =
        changing.into_iter().partition(|r| r.part == Part::Tetragon);
    for r in first {
        let step = Step::start(printer, format!("helm upgrade --install {}", r.name));
        finish(step, upgrade(c, r, printer, None).await, "deployed")?;
    }
    let retired = scoped_tokens(c, printer).await?;
    if plan.objects.iter().any(|o| o.part == Part::Policies) {
        let step = Step::start(printer, format!("Waiting for CRD {POLICY_CRD}"));
        finish(
            step,
            wait::crd_established(kube, POLICY_CRD, CRD_WAIT.min(deadline.left())).await,
            "established",
        )?;
    }
    if !rest.is_empty() {
        let names: Vec<&str> = rest.iter().map(|r| r.name.as_str()).collect();
        let step = Step::start(
            printer,
            format!("helm upgrade --install {}", names.join(", ")),
        );
        let results =
            futures::future::join_all(rest.iter().map(|r| upgrade(c, r, printer, None))).await;
        finish(step, every(results), "deployed")?;
    }
    for (o, c) in plan.objects.iter().zip(&preview.objects) {
        if *c == Change::Unchanged {
            continue;
        }
        let change = objects::apply(kube, o).await?;
        printer.success(format!("{} {}", objects::label(o), summary::past(change)));
    }
    for (o, c) in plan.retired.iter().zip(&preview.retired) {
        if *c == Change::Delete {
            objects::delete_retired(kube, o).await?;
            printer.success(format!("{} deleted (retired)", objects::label(o)));
        }
    }
    Ok(retired)
}

/// InfluxDB's scoped tokens, before their holders (telegraf, Grafana) are installed or rolled.
/// On a first install InfluxDB does not run yet: the pipeline goes in without its agent, and
/// the tokens are made once InfluxDB answers.
async fn scoped_tokens(c: &Converging<'_>, printer: &Printer) -> Result<Vec<String>> {
    let (kube, plan, config, tokens) = (c.kube, c.plan, c.config, c.tokens);
    if config.influxdb.url.is_some() || !wants_tokens_in(plan) {
        return Ok(Vec::new());
    }
    let pipeline = plan.releases.iter().find(|r| r.part == Part::Pipeline);
    let nothing_to_make = tokens.changing().next().is_none();
    if !tokens.checked {
        if nothing_to_make {
            // The Secrets exist; InfluxDB was not there to check them against.
            return Ok(Vec::new());
        }
        match pipeline {
            Some(r) if c.existing.get(r).is_none() => {
                let step = Step::start(
                    printer,
                    format!(
                        "helm upgrade --install {} (InfluxDB first, for its tokens)",
                        r.name
                    ),
                );
                finish(
                    step,
                    upgrade(c, r, printer, Some(FIRST_PASS_VALUES)).await,
                    "deployed",
                )?;
            }
            // The pipeline is there: InfluxDB should answer (ensure waits a little, then says
            // what is wrong).
            Some(_) => {}
            None => {
                printer.warn(
                    "InfluxDB does not answer, so telegraf's and Grafana's tokens are not made \
                     yet: `kovenant install --only pipeline` makes them",
                );
                return Ok(Vec::new());
            }
        }
    }
    let step = Step::start(printer, "InfluxDB tokens");
    let ensured = finish(step, tokens::ensure(kube, config, tokens).await, "done")?;
    for (what, change) in &ensured.changes {
        printer.success(format!("{what} {change}d"));
    }
    Ok(ensured.retired)
}

/// The pipeline's values on a first install's first pass: InfluxDB without the agent.
const FIRST_PASS_VALUES: &str = "agent:\n  enabled: false\n";

fn wants_tokens_in(plan: &Plan) -> bool {
    plan.releases
        .iter()
        .any(|r| matches!(r.part, Part::Pipeline | Part::Grafana))
        || !plan.secrets.is_empty()
}

/// The outcome of steps run at once: every failure is reported, not only the first.
fn every(results: Vec<Result<()>>) -> Result<()> {
    let mut errors: Vec<Error> = results.into_iter().filter_map(Result::err).collect();
    if errors.len() <= 1 {
        return errors.pop().map_or(Ok(()), Err);
    }
    let mut lines: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for e in &errors {
        lines.push(e.to_string());
        if let Some(h) = e.hint()
            && !hints.contains(&h)
        {
            hints.push(h);
        }
    }
    let err = Error::step(
        format!("{} releases failed", errors.len()),
        format!("\n{}", lines.join("\n")),
    );
    Err(if hints.is_empty() {
        err
    } else {
        err.with_hint(hints.join("; "))
    })
}

fn finish<T>(step: Step, out: Result<T>, done: &str) -> Result<T> {
    match out {
        Ok(v) => {
            step.finish(done);
            Ok(v)
        }
        Err(e) => {
            step.fail();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_of_a_parallel_step_is_reported() {
        let fail = |r: &str, why: &str| {
            Err(
                Error::step(format!("helm upgrade --install {r}"), why.to_string())
                    .with_hint("fix it"),
            )
        };
        assert!(every(vec![Ok(()), Ok(())]).is_ok());
        let one = every(vec![Ok(()), fail("grafana", "exists")]).unwrap_err();
        assert_eq!(one.to_string(), "helm upgrade --install grafana: exists");
        let two = every(vec![fail("prometheus", "a"), Ok(()), fail("grafana", "b")]).unwrap_err();
        assert_eq!(
            two.to_string(),
            "2 releases failed: \nhelm upgrade --install prometheus: a\nhelm upgrade --install \
             grafana: b"
        );
        assert_eq!(two.hint().as_deref(), Some("fix it"));
    }
}
