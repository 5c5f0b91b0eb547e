//! `kovenant render`: write everything install would apply to a folder.
use std::path::Path;

use crate::assets::Assets;
use crate::backend::docker::AgentBinary;
use crate::cli::{GlobalArgs, RenderArgs};
use crate::config;
use crate::error::{Error, Result};
use crate::plan::image;
use crate::plan::{self, Rendered};
use crate::ui::Printer;

pub fn run(global: &GlobalArgs, args: &RenderArgs, printer: &Printer) -> Result<()> {
    // Configuration first: a bad .env stops before anything is written.
    let config = config::resolve(global, args.env.env_file.as_deref())?;
    for warning in &config.warnings {
        printer.warn(warning);
    }
    let assets = match &global.assets {
        Some(dir) => Assets::from_dir(dir)?,
        None => Assets::embedded(),
    };
    let binary = AgentBinary::read(args.agent_binary.as_deref())?;
    let image = image::agent_image(&config, &binary.path, &binary.bytes);
    if let Some(w) = &image.warning {
        printer.warn(w);
    }
    let facts = plan::ClusterFacts {
        agent_arch: image.arch,
        ..Default::default()
    };
    let rendered = plan::render_all_with(&config, &assets, &image.reference, &facts)?;
    check_out_dir(&args.out, args.force)?;
    write(&args.out, &rendered, printer)?;
    printer.success(format!(
        "rendered {} files into {}",
        rendered.files.len(),
        args.out.display()
    ));
    Ok(())
}

fn check_out_dir(out: &Path, force: bool) -> Result<()> {
    let mut entries = match std::fs::read_dir(out) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(Error::usage(
                format!("--out {}: not a folder", out.display()),
                Some("name a new or empty folder".to_owned()),
            ));
        }
        Err(e) => return Err(Error::io("reading", out, e)),
    };
    if entries.next().is_some() && !force {
        return Err(Error::usage(
            format!("--out {}: the folder is not empty", out.display()),
            Some("name a new or empty folder, or add --force to overwrite the files kovenant renders".to_owned()),
        ));
    }
    Ok(())
}

fn write(out: &Path, rendered: &Rendered, printer: &Printer) -> Result<()> {
    for (rel, body) in &rendered.files {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
        }
        std::fs::write(&path, body).map_err(|e| Error::io("writing", &path, e))?;
        printer.stdout(path.display().to_string());
    }
    Ok(())
}
