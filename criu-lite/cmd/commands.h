/* Commands that live in their own files; main() hands them argv from the
 * command name on.  Weak, so a build without one says so. */
#ifndef CR_COMMANDS_H
#define CR_COMMANDS_H

int cmd_show(int argc, char **argv) __attribute__((weak));
int cmd_check(int argc, char **argv) __attribute__((weak));

#endif
