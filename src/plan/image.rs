//! The telegraf-tetragon image's build context: Dockerfile and the agent binary, tagged by content.

use crate::config::Config;

/// The Dockerfile of the telegraf-tetragon image. (Placeholder until the image work lands.)
pub fn dockerfile(config: &Config) -> String {
    format!(
        "FROM {}\nCOPY kovenant /usr/local/bin/kovenant\n",
        config.telegraf_image
    )
}
