//! Everything a cloned child needs, prepared in the caller before the clone: the child
//! must not allocate (see the module documentation), so argv, the environment and the list
//! of paths to try for `argv[0]` exist as C strings and pointer arrays beforehand.

use std::ffi::{c_char, CString};
use std::path::Path;

use super::ContainerError;

/// `PATH` of the base environment, the one Docker gives a container without its own.
pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Owned C strings plus the NULL-terminated array of pointers to them that execve takes.
/// The pointers stay valid when the struct moves: they point into each `CString`'s own
/// heap buffer, which neither moves nor is freed while `strings` lives.
pub(super) struct CStrArray {
    /// Never read: owns what `ptrs` points to.
    _strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl CStrArray {
    pub fn new(strings: Vec<CString>) -> CStrArray {
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStrArray {
            _strings: strings,
            ptrs,
        }
    }

    pub fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ptrs.len() - 1
    }
}

/// A command ready to exec in a child: what execvpe would do, with the `PATH` search
/// resolved into a list of candidate paths up front.
pub(super) struct CommandPlan {
    /// `argv[0]` as the user wrote it, for the error message.
    pub name: String,
    /// Paths to try in order (one if `argv[0]` contains a `/`).
    pub candidates: Vec<CString>,
    pub argv: CStrArray,
    pub envp: CStrArray,
}

impl CommandPlan {
    pub fn new(argv: &[String], env: &[(String, String)]) -> Result<CommandPlan, ContainerError> {
        let name = argv
            .first()
            .ok_or_else(|| invalid("argv", "", "must not be empty"))?;
        let path = env
            .iter()
            .rev()
            .find(|(key, _)| key == "PATH")
            .map_or("", |(_, v)| v.as_str());
        let candidates = path_candidates(name, path)
            .into_iter()
            .map(|candidate| c_string("argv", candidate))
            .collect::<Result<_, _>>()?;
        let argv = argv
            .iter()
            .map(|arg| c_string("argv", arg.clone()))
            .collect::<Result<_, _>>()?;
        let envp = env.iter().map(env_entry).collect::<Result<_, _>>()?;
        Ok(CommandPlan {
            name: name.clone(),
            candidates,
            argv: CStrArray::new(argv),
            envp: CStrArray::new(envp),
        })
    }
}

/// The environment every container command starts from; `hostname` is `None` for `exec`,
/// whose caller knows the container's host name from its own records.
pub(super) fn base_env(hostname: Option<&str>, term: Option<String>) -> Vec<(String, String)> {
    let mut env = vec![("PATH".to_owned(), DEFAULT_PATH.to_owned())];
    if let Some(hostname) = hostname {
        env.push(("HOSTNAME".to_owned(), hostname.to_owned()));
    }
    env.push(("HOME".to_owned(), "/root".to_owned()));
    if let Some(term) = term {
        env.push(("TERM".to_owned(), term));
    }
    env
}

/// `base` with each variable of `overrides` replacing the one of the same name, or added
/// at the end; later overrides win.
pub(super) fn merge_env(
    mut base: Vec<(String, String)>,
    overrides: &[(String, String)],
) -> Vec<(String, String)> {
    for (key, value) in overrides {
        match base.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.clone(),
            None => base.push((key.clone(), value.clone())),
        }
    }
    base
}

/// Where execvp would look for `name`: the name itself if it contains a `/`, else each
/// directory of `path` in order, an empty entry meaning the working directory.
pub(super) fn path_candidates(name: &str, path: &str) -> Vec<String> {
    if name.contains('/') {
        return vec![name.to_owned()];
    }
    path.split(':')
        .map(|dir| match dir {
            "" => name.to_owned(),
            dir => format!("{}/{name}", dir.trim_end_matches('/')),
        })
        .collect()
}

fn env_entry((key, value): &(String, String)) -> Result<CString, ContainerError> {
    if key.is_empty() || key.contains('=') {
        return Err(invalid(
            "env",
            key,
            "a name must be non-empty and contain no '='",
        ));
    }
    c_string("env", format!("{key}={value}"))
}

/// A C string from `value`, which must not contain NUL.
pub(super) fn c_string(field: &'static str, value: String) -> Result<CString, ContainerError> {
    CString::new(value).map_err(|err| {
        let value = String::from_utf8_lossy(&err.into_vec()).into_owned();
        invalid(field, &value, "must not contain NUL")
    })
}

/// A C string from a path, which must not contain NUL.
pub(super) fn c_path(field: &'static str, path: &Path) -> Result<CString, ContainerError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| invalid(field, &path.display().to_string(), "must not contain NUL"))
}

pub(super) fn invalid(field: &'static str, value: &str, reason: &'static str) -> ContainerError {
    ContainerError::InvalidSpec {
        field,
        value: value.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn base_env_has_path_hostname_home_and_term() {
        let env = base_env(Some("web"), Some("xterm".into()));
        let expected = pairs(&[
            ("PATH", DEFAULT_PATH),
            ("HOSTNAME", "web"),
            ("HOME", "/root"),
            ("TERM", "xterm"),
        ]);
        assert_eq!(env, expected);
        assert_eq!(
            base_env(None, None),
            pairs(&[("PATH", DEFAULT_PATH), ("HOME", "/root")])
        );
    }

    #[test]
    fn overrides_replace_in_place_and_append() {
        let base = pairs(&[("PATH", "/bin"), ("HOME", "/root")]);
        let merged = merge_env(base, &pairs(&[("HOME", "/home/x"), ("A", "1"), ("A", "2")]));
        assert_eq!(
            merged,
            pairs(&[("PATH", "/bin"), ("HOME", "/home/x"), ("A", "2")])
        );
    }

    #[test]
    fn candidates_follow_execvp() {
        assert_eq!(path_candidates("./run", "/bin"), vec!["./run"]);
        assert_eq!(path_candidates("/bin/sh", "/usr/bin"), vec!["/bin/sh"]);
        assert_eq!(
            path_candidates("sh", "/usr/bin:/bin/"),
            vec!["/usr/bin/sh", "/bin/sh"]
        );
        assert_eq!(
            path_candidates("sh", "/a::/b"),
            vec!["/a/sh", "sh", "/b/sh"]
        );
    }

    #[test]
    fn command_plan_uses_the_last_path_and_rejects_bad_input() {
        let env = pairs(&[("PATH", "/x"), ("PATH", "/y")]);
        let plan = CommandPlan::new(&["ls".into(), "-l".into()], &env).unwrap();
        assert_eq!(plan.candidates, vec![CString::new("/y/ls").unwrap()]);
        assert_eq!(plan.argv.len(), 2);
        assert_eq!(plan.envp.len(), 2);

        assert!(CommandPlan::new(&[], &env).is_err());
        assert!(CommandPlan::new(&["a\0b".into()], &env).is_err());
        assert!(CommandPlan::new(&["ls".into()], &pairs(&[("A=B", "1")])).is_err());
        assert!(CommandPlan::new(&["ls".into()], &pairs(&[("", "1")])).is_err());
    }

    #[test]
    fn pointer_array_is_null_terminated_and_survives_a_move() {
        let array = CStrArray::new(vec![
            CString::new("a").unwrap(),
            CString::new("bc").unwrap(),
        ]);
        let moved = Box::new(array);
        // SAFETY: as_ptr points to len + 1 pointers; the first len point to live CStrings.
        let (first, second, end) = unsafe {
            let p = moved.as_ptr();
            (
                std::ffi::CStr::from_ptr(*p),
                std::ffi::CStr::from_ptr(*p.add(1)),
                *p.add(2),
            )
        };
        assert_eq!(first.to_str().unwrap(), "a");
        assert_eq!(second.to_str().unwrap(), "bc");
        assert!(end.is_null());
    }
}
