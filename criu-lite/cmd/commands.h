/* Commands that live in their own files; main() hands them argv from the
 * command name on. */
#ifndef CR_COMMANDS_H
#define CR_COMMANDS_H

int cmd_show(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_page_server(int argc, char **argv);

#endif
