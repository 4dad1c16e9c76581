//! STUB for type-checking; replaced by the real module on merge.
#![allow(unused_variables)]
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct ContainerError;
pub struct Spec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<PathBuf>,
    pub hostname: String,
    pub rootfs: Option<PathBuf>,
    pub new_netns: bool,
    pub bind_files: Vec<(PathBuf, PathBuf)>,
    pub stdio: Stdio,
}
pub enum Stdio {
    Inherit,
    Log(PathBuf),
}
pub struct Created;
pub struct Running;
pub enum Exit {
    Code(i32),
    Signal(i32),
}
impl Exit {
    pub fn code(&self) -> i32 {
        todo!()
    }
}
pub fn create(spec: &Spec) -> Result<Created, ContainerError> {
    todo!()
}
impl Created {
    pub fn pid(&self) -> i32 {
        todo!()
    }
    pub fn netns(&self) -> Result<OwnedFd, ContainerError> {
        todo!()
    }
    pub fn start(self) -> Result<Running, ContainerError> {
        todo!()
    }
}
impl Running {
    pub fn pid(&self) -> i32 {
        todo!()
    }
    pub fn wait(self) -> Result<Exit, ContainerError> {
        todo!()
    }
}
pub fn exec(
    pid: i32,
    argv: &[String],
    env: &[(String, String)],
    workdir: Option<&Path>,
) -> Result<i32, ContainerError> {
    todo!()
}
pub fn start_time(pid: i32) -> Option<u64> {
    todo!()
}
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    todo!()
}
pub fn kill(pid: i32, start_time: u64, signal: i32) -> Result<bool, ContainerError> {
    todo!()
}
