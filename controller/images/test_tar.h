// Crafted tars for the image tests: any member libarchive can write,
// including the hostile ones an attacker would put in a layer.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <string>
#include <utility>
#include <vector>

namespace kiln::images::testing {

struct Member {
  Member(std::string p, char t = 'f', std::string d = "", int m = 0644, int u = 0, int g = 0)
      : path(std::move(p)), type(t), data(std::move(d)), mode(m), uid(u), gid(g) {}
  std::string path;
  char type;         // f file, d dir, l symlink, h hard link, c char device, p fifo
  std::string data;  // content, or the target of l and h
  int mode;
  int uid;
  int gid;
  long mtime = 1700000000;
};

// Writes members to path as a pax tar, gzip-compressed when gzip is set.
inline void WriteTar(const std::string& path, const std::vector<Member>& members,
                     bool gzip = false) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_open_filename(a, path.c_str());
  for (const Member& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.path.c_str());
    archive_entry_set_perm(e, m.mode);
    archive_entry_set_uid(e, m.uid);
    archive_entry_set_gid(e, m.gid);
    archive_entry_set_mtime(e, m.mtime, 0);
    switch (m.type) {
      case 'd':
        archive_entry_set_filetype(e, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, m.data.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, m.data.c_str());
        break;
      case 'c':
        archive_entry_set_filetype(e, AE_IFCHR);
        archive_entry_set_rdev(e, makedev(1, 3));
        break;
      case 'p':
        archive_entry_set_filetype(e, AE_IFIFO);
        break;
      default:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(m.data.size()));
    }
    archive_write_header(a, e);
    if (m.type == 'f') archive_write_data(a, m.data.data(), m.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

}  // namespace kiln::images::testing
