/* A static program that is the whole of a test image: it reports what it sees
 * of the root filesystem, so a test can tell the image apart from the host. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  printf("probe uid=%d usr=%s etc=%s\n", (int)getuid(), access("/usr/bin", F_OK) == 0 ? "yes" : "no",
         access("/etc/passwd", F_OK) == 0 ? "yes" : "no");
  return 0;
}
