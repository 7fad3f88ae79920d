# Sourced by the benchmarks. bench_repo FILES COMMITS prints the path of a
# bare repository of FILES files in 1,000 directories (50 top directories x
# 20 subdirectories) and COMMITS commits on main, each after the first
# changing 5 files. It is made once with `git fast-import` + `git repack` and
# cached under /tmp, keyed by the two numbers. Progress goes to stderr.
bench_repo() {
  local files=$1 commits=$2
  local repo=/tmp/kiln-bench-workspace-f$files-c$commits-v1.git
  if [[ ! -f $repo/kiln-complete ]]; then
    echo "== generating $repo ($files files, $commits commits; once)" >&2
    rm -rf "$repo"
    git init -q --bare "$repo"
    python3 - "$files" "$commits" <<'PY' | git -C "$repo" fast-import --quiet
import random, sys
files, commits = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
paths = [f"src/d{i % 50:02d}/s{(i // 50) % 20:02d}/file{i:06d}.txt" for i in range(files)]
version = {}

def content(path, v):
    return "".join(f"{path} line {n} version {v}\n" for n in range(20)).encode()

def commit(k, changed):
    msg = f"commit {k}\n".encode()
    out.write(b"commit refs/heads/main\n")
    out.write(f"committer Bench <bench@example.com> {1700000000 + k} +0000\n".encode())
    out.write(b"data %d\n%s" % (len(msg), msg))
    for p in changed:
        data = content(p, version.get(p, 0))
        out.write(f"M 100644 inline {p}\n".encode())
        out.write(b"data %d\n%s\n" % (len(data), data))

commit(0, paths)
rng = random.Random(42)
for k in range(1, commits):
    changed = rng.sample(paths, 5)
    for p in changed:
        version[p] = version.get(p, 0) + 1
    commit(k, changed)
PY
    git -C "$repo" symbolic-ref HEAD refs/heads/main
    git -C "$repo" repack -adq
    touch "$repo/kiln-complete"
  fi
  echo "$repo"
}
