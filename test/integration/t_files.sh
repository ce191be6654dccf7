#!/usr/bin/env bash
# t_files: kinds of open files (issue 14 item 5, "Files"), each held by
# w_files KIND (see test/workloads/w_files.c).  As in t_lost, cr either
# restores the kind exactly (the workload's checks pass after restore) or
# refuses the dump naming the pid and the thing, leaving no dump and the
# process running; each case says which of the two cr does today.
source "$(dirname "$0")/lib.sh"

run_case fifo_deleted lost_either_way restored "" w_files fifo_deleted
run_case dir_open lost_either_way restored "" w_files dir_open
run_case dir_deleted lost_either_way restored "" w_files dir_deleted
run_case cwd_deleted lost_either_way restored "" w_files cwd_deleted
run_case opath_symlink lost_either_way restored "" w_files opath_symlink
run_case opath_file lost_either_way restored "" w_files opath_file
run_case hardlink_deleted lost_either_way restored "" w_files hardlink_deleted
run_case hardlink_elsewhere lost_either_way refused "no other name in its directory" w_files hardlink_elsewhere
run_case inotify_deleted lost_either_way refused "a watch on a deleted file" w_files inotify_deleted
run_case fanotify lost_either_way refused "fanotify" w_files fanotify
run_case nsfs_own lost_either_way restored "" w_files nsfs_own
run_case nsfs_other lost_either_way refused "not the process's own uts namespace" w_files nsfs_other
finish_tests
