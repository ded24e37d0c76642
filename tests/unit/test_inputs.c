/* test_inputs.c — outputs never land on inputs (inputs.h): an output is
 * refused when it is a recorded input by any name (symbolic link, hard link,
 * "..", standard output), when it is a recorded model directory, and anywhere
 * inside a model's .realign, existing or not; other paths pass, an input that
 * was removed protects nothing, and writers that rename refuse to replace a
 * device or FIFO. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/inputs.h"

static char dir[] = "/tmp/rl-test-inputs.XXXXXX";

static const char *at(const char *name)
{
	static char buf[8][512];
	static int k;
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
	return buf[k];
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	REQUIRE(fd >= 0 && write(fd, "x", 1) == 1);
	close(fd);
}

/* An input file, recorded as a tool records it: opened, then closed. */
static void read_input(const char *path)
{
	int fd = open(path, O_RDONLY);
	REQUIRE(fd >= 0);
	rl_input_file(fd, path);
	close(fd);
}

#define REFUSED(path, needle)                                                                      \
	do {                                                                                       \
		int rc_ = rl_output_check(path);                                                   \
		CHECKF(rc_ == RL_USAGE && strstr(rl_errmsg(), needle), "%s: rc %d '%s'", path,     \
		       rc_, rl_errmsg());                                                          \
	} while (0)
#define PASSES(path) CHECKF(rl_output_check(path) == RL_OK, "%s: '%s'", path, rl_errmsg())

int main(void)
{
	REQUIRE(mkdtemp(dir));
	REQUIRE(mkdir(at("model"), 0755) == 0 && mkdir(at("model/sub"), 0755) == 0);
	touch(at("model/model.safetensors"));
	touch(at("model/config.json"));
	touch(at("model/README.md"));
	rl_input_dir(at("model"));
	read_input(at("model/model.safetensors"));
	read_input(at("model/config.json"));

	/* the input by its name, through "..", a symbolic link, a hard link */
	REFUSED(at("model/model.safetensors"), "model/model.safetensors', an input of this run");
	REFUSED(at("model/sub/../config.json"), "an input of this run");
	REQUIRE(symlink("model/model.safetensors", at("link")) == 0);
	REFUSED(at("link"), "link' is '");
	REQUIRE(link(at("model/model.safetensors"), at("hard")) == 0);
	REFUSED(at("hard"), "model/model.safetensors', an input of this run");
	/* the model directory itself; its .realign, present or not, at any depth */
	REFUSED(at("model"), "is the input directory");
	REFUSED(at("model/.realign/journal"), "the state directory of the input model");
	REFUSED(at("model/.realign/a/b/c"), "the state directory of the input model");
	REFUSED(at("model/sub/../.realign"), "the state directory of the input model");
	REQUIRE(mkdir(at("model/.realign"), 0755) == 0);
	REFUSED(at("model/.realign/last.rlj"), "the state directory of the input model");
	REQUIRE(symlink("model/.realign", at("state")) == 0);
	REFUSED(at("state/step.rlj"), "the state directory of the input model");
	/* what is not an input passes: new files beside it, files it did not
	 * read, a .realign of a directory that is no model, names that only look
	 * alike */
	PASSES(at("model/step.rlj"));
	PASSES(at("model/README.md"));
	PASSES(at("other/.realign/x")); /* no such model was read */
	PASSES(at("model/.realignx"));
	PASSES(at("model/sub/x.realign"));
	PASSES("-");
	/* standard output appended to an input */
	int saved = dup(1), fd = open(at("model/config.json"), O_WRONLY | O_APPEND);
	REQUIRE(saved >= 0 && fd >= 0 && dup2(fd, 1) == 1);
	int rc = rl_output_check("-");
	dup2(saved, 1);
	close(fd);
	close(saved);
	CHECK(rc == RL_USAGE && strstr(rl_errmsg(), "standard output is '"));
	/* an input removed since protects nothing (its inode may be reused) */
	REQUIRE(unlink(at("hard")) == 0 && unlink(at("model/model.safetensors")) == 0);
	touch(at("model/model.safetensors"));
	PASSES(at("model/model.safetensors"));
	/* forgotten: the run's own output read back */
	rl_input_forget(at("model/config.json"));
	PASSES(at("model/config.json"));

	/* writers that rename: never over a device or FIFO, a directory only
	 * where they make one */
	REQUIRE(mkfifo(at("fifo"), 0600) == 0);
	CHECK(rl_output_check_replace(at("fifo"), 0) == RL_USAGE &&
	      strstr(rl_errmsg(), "fifo' is a FIFO: refusing to replace it with the file"));
	char null[512] = "/dev/null"; /* ours if root may make one: /dev/null is shared */
	if (mknod(at("null"), S_IFCHR | 0666, makedev(1, 3)) == 0)
		snprintf(null, sizeof null, "%s", at("null"));
	CHECK(rl_output_check_replace(null, 0) == RL_USAGE &&
	      strstr(rl_errmsg(), "is a character device"));
	CHECK(rl_output_check_replace(at("model/sub"), 0) == RL_USAGE);
	CHECK(rl_output_check_replace(at("model/sub"), 1) == RL_OK);
	CHECK(rl_output_check_replace(at("model/README.md"), 1) == RL_USAGE);
	CHECK(rl_output_check_replace(at("model/README.md"), 0) == RL_OK);
	CHECK(rl_output_check_replace(at("new"), 0) == RL_OK);
	CHECK(rl_output_check_replace(at("model"), 1) == RL_USAGE); /* an input still */

	const char *rm[] = {"link",
			    "state",
			    "fifo",
			    "null",
			    "model/model.safetensors",
			    "model/config.json",
			    "model/README.md"};
	for (size_t i = 0; i < sizeof rm / sizeof *rm; i++)
		unlink(at(rm[i]));
	rmdir(at("model/.realign"));
	rmdir(at("model/sub"));
	rmdir(at("model"));
	rmdir(dir);
	return check_done("test_inputs");
}
