/* test_file.c — opening what realign reads (file.h): regular files read
 * whole; a FIFO without a writer, a directory, a device and a socket refused
 * at once (an alarm fails the test instead of letting it hang) where a
 * regular file is required; pipes accepted where an input may be one; broken
 * symbolic links named as such. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/file.h"

static char dir[] = "/tmp/rl-test-file.XXXXXX";

static const char *at(const char *name)
{
	static char buf[4][256];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
	return buf[k];
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "test_file: an open or a read hung\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
		/* nothing more to do */
	}
	_exit(1);
}

/* rc == want and the message contains needle. */
#define CHECK_ERR(expr, want, needle)                                                              \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		CHECKF(rc_ == (want) && strstr(rl_errmsg(), (needle)), "%s: rc %d, '%s'", #expr,   \
		       rc_, rl_errmsg());                                                          \
	} while (0)

static void regular(void)
{
	FILE *fp = fopen(at("config.json"), "w");
	REQUIRE(fp);
	fputs("{\"a\": 1}\n", fp);
	fclose(fp);
	char *buf;
	size_t len;
	CHECK_EQ_INT(rl_read_file(at("config.json"), &buf, &len), RL_OK);
	CHECK_EQ_INT(len, 9);
	CHECK_STR(buf, "{\"a\": 1}\n");
	free(buf);
	int fd;
	CHECK_EQ_INT(rl_open_regular(at("config.json"), 1, &fd), RL_OK);
	CHECK((fcntl(fd, F_GETFL) & (O_NONBLOCK | O_ACCMODE)) == O_RDWR); /* blocking again */
	close(fd);
	CHECK_EQ_INT(rl_path_present(at("config.json")), 1);
}

/* A null device of our own (root may make one; /dev/null is shared and has
 * been seen replaced by a plain file on a busy machine). */
static const char *null_device(void)
{
	int fd = mknod(at("null"), S_IFCHR | 0666, makedev(1, 3)) == 0 ? open(at("null"), O_RDONLY)
								       : -1;
	if (fd < 0) /* not root, or a nodev file system */
		return "/dev/null";
	close(fd);
	static char path[256];
	snprintf(path, sizeof path, "%s", at("null")); /* at()'s buffers are reused */
	return path;
}

static void special(void)
{
	int fd;
	char *buf;
	size_t len;
	const char *null = null_device();
	/* a FIFO nobody writes: refused at once, not waited on */
	REQUIRE(mkfifo(at("fifo"), 0600) == 0);
	CHECK_ERR(rl_open_regular(at("fifo"), 0, &fd), RL_EDATA,
		  "fifo': not a regular file (it is a FIFO)");
	CHECK_ERR(rl_read_file(at("fifo"), &buf, &len), RL_EDATA, "(it is a FIFO)");
	CHECK_ERR(rl_open_regular(dir, 0, &fd), RL_EDATA, "(it is a directory)");
	CHECK_ERR(rl_read_file(null, &buf, &len), RL_EDATA, "(it is a character device)");
	/* a socket cannot even be opened: still a clear message */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", at("sock"));
	REQUIRE(s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0);
	CHECK_ERR(rl_read_file(at("sock"), &buf, &len), RL_EDATA, "(it is a socket)");
	CHECK_ERR(rl_read_input(at("sock"), &buf, &len), RL_EDATA, "(it is a socket)");
	close(s);
	/* inputs: a directory is refused, a device or a pipe is read */
	CHECK_ERR(rl_open_input(dir, &fd), RL_EDATA, "is a directory");
	CHECK_EQ_INT(rl_read_input(null, &buf, &len), RL_OK);
	CHECK_EQ_INT(len, 0);
	free(buf);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		int w = open(at("fifo"), O_WRONLY);
		_exit(w >= 0 && write(w, "piped\n", 6) == 6 ? 0 : 1);
	}
	CHECK_EQ_INT(rl_read_input(at("fifo"), &buf, &len), RL_OK);
	CHECK_STR(buf, "piped\n");
	free(buf);
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void links(void)
{
	int fd;
	char *buf;
	size_t len;
	REQUIRE(symlink("model-00001-of-00002.safetensors", at("broken")) == 0);
	CHECK_EQ_INT(rl_path_present(at("broken")), 1);
	CHECK_ERR(rl_open_regular(at("broken"), 0, &fd), RL_EDATA,
		  "broken': broken symbolic link (to 'model-00001-of-00002.safetensors', which "
		  "does not exist)");
	CHECK_ERR(rl_read_file(at("broken"), &buf, &len), RL_EDATA, "broken symbolic link");
	CHECK_ERR(rl_read_input(at("broken"), &buf, &len), RL_EDATA, "broken symbolic link");
	/* a missing file is a missing file */
	CHECK_EQ_INT(rl_path_present(at("missing")), 0);
	CHECK_ERR(rl_read_file(at("missing"), &buf, &len), RL_EDATA,
		  "missing': No such file or directory");
	errno = ENOENT;
	CHECK_ERR(rl_path_error(at("broken")), RL_EDATA, "broken symbolic link");
	errno = EACCES;
	CHECK_ERR(rl_path_error(at("config.json")), RL_ESYS, "Permission denied");
	/* a link that resolves is followed */
	REQUIRE(symlink("config.json", at("linked.json")) == 0);
	CHECK_EQ_INT(rl_read_file(at("linked.json"), &buf, &len), RL_OK);
	free(buf);
}

int main(void)
{
	REQUIRE(mkdtemp(dir));
	signal(SIGALRM, on_alarm);
	alarm(20);
	regular();
	special();
	links();
	const char *names[] = {"config.json", "fifo", "sock", "broken", "linked.json", "null"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		unlink(at(names[i]));
	rmdir(dir);
	return check_done("test_file");
}
