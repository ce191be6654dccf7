#!/usr/bin/env bash
# t_lost: a dump that succeeds kills the process, so the restore must then
# work; what cr cannot restore it must refuse at dump, by name, while the
# process still runs (issue 14, "never lose a process at restore").  Each
# case is a cause that once made a dump succeed and its restore fail
# (w_lost CAUSE, see test/workloads/w_lost.c):
#
#   either way: cr dump either succeeds, and then cr restore must succeed
#   and the process pass its checks, or it is refused, and then the error
#   names the pid and the thing, no dump is left, and the process runs on
#   and passes the same checks.  A dump that succeeds and a restore that
#   fails is always a failure.
#
#   and as expected: the case says which of the two cr does today
#   (restored or refused); the other one fails the case too, so that the
#   README's "What comes back" table is updated with the change.
#
# Also pidfd_dead: pidfds of reaped children (w_pidfd dead), restored.
source "$(dirname "$0")/lib.sh"

run_case tmpfile lost_either_way restored "" w_lost tmpfile
run_case tmpfile_linked lost_either_way refused "made with O_TMPFILE" w_lost tmpfile_linked
run_case deleted_dir lost_either_way refused "directory" w_lost deleted_dir
run_case chroot lost_either_way restored "" w_lost chroot
run_case chroot_outside lost_either_way restored "" w_lost chroot_outside
run_case chroot_unix lost_either_way restored "" w_lost chroot_unix
run_case chrdev_deleted lost_either_way refused "deleted" w_lost chrdev_deleted
run_case proc_child lost_either_way restored "" w_lost proc_child
run_case proc_sibling lost_either_way restored "" w_lost proc_sibling
run_case proc_shared lost_either_way refused "/stat" w_lost proc_shared
run_case proc_thread lost_either_way refused "thread" w_lost proc_thread
run_case proc_outside lost_either_way refused "no process of the dump" w_lost proc_outside
run_case pidfd_zombie lost_either_way restored "" w_lost pidfd_zombie
run_case pidfd_sibling lost_either_way restored "" w_lost pidfd_sibling
run_case pidfd_dead lost_either_way restored "" w_pidfd dead
run_case unix_deleted lost_either_way restored "" w_lost unix_deleted
run_case unix_replaced lost_either_way restored "" w_lost unix_replaced
run_case unix_dir_gone lost_either_way restored "" w_lost unix_dir_gone
run_case unix_dir_file lost_either_way refused "not a directory" w_lost unix_dir_file
run_case unix_cwd_gone lost_either_way refused "is deleted" w_lost unix_cwd_gone
run_case unix_sender_gone lost_either_way restored "" w_lost unix_sender_gone
finish_tests
