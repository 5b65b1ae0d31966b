// Payloads of Kelpie's administrative opcodes (dog <-> sheep). Public opcodes keep sheepdog's
// binary formats; the admin ones below carry JSON text (nlohmann-json on both sides), because only
// Kelpie's own dog sends them and JSON keeps them readable and extensible.
//
// All requests use the 48-byte header; a JSON request body is sent with flag kCmdWrite and
// data_length = its size. A JSON reply comes back as the response data. The reply's
// header result is a res:: code; the JSON body is present only on kSuccess.
//
// op::kMakeFs        req {"copies":N, "copy_policy":P, "block_size_shift":S, "lock":bool}
//                    (dog cluster format). The whole cluster is formatted: every existing object
//                    and VDI is dropped.
// op::kShutdown      no body. Every sheep of the cluster exits cleanly.
// op::kStatCluster   rsp {"status":"running"|"waiting for format"|"shutting down",
//                         "ctime":<unix seconds of format>, "epoch":N, "copies":N,
//                         "copy_policy":P, "block_size_shift":S, "lock":bool,
//                         "epochs":[{"epoch":N,"time":<unix secs>,"nodes":["addr:port",...]},...]}
//                    epochs newest first.
// op::kGetNodeList   rsp {"epoch":N, "local":"addr:port",
//                         "nodes":[{"addr":"127.0.0.1","port":7000,"zone":Z,"vnodes":V},...]}
//                    nodes in ring order (sorted by address then port); dog numbers them from 0.
// op::kGetNodeInfo   rsp {"size":<capacity bytes>, "used":<bytes used by objects>,
//                         "objects":<number of objects>}  — about the sheep asked.
// op::kRecoveryStatus rsp {"epoch":N, "recovering":bool, "done":N, "total":N}  — the sheep asked.
// op::kLockList      rsp [{"vid":V, "name":"...", "type":"normal"|"shared",
//                          "participants":[{"client":"addr:port", "state":"modified"|"shared"|
//                                           "invalidated"}]}]
// op::kLockUnlock    req: 512 bytes name[256]+tag[256] as for LOCK_VDI (vdi.snapid selects a
//                    snapshot). Releases every lock on that VDI. VDI_NOT_LOCKED if none.
// op::kObjLocate     header oid = the object. rsp {"oid":O, "copies":N,
//                         "placement":["addr:port",...],   // where the ring puts it
//                         "holders":["addr:port",...]}     // nodes that actually hold it
// op::kCheckObj      header oid = the object, obj.copies = copies (0: from the VDI).
//                    Compares every copy (by CRC32C of its bytes); missing or differing copies
//                    are rewritten from the copy the majority agrees on (the primary on a tie).
//                    rsp {"oid":O, "copies":N, "ok":bool (all agreed before repair),
//                         "repaired":["addr:port",...], "missing":["addr:port",...]}
//
// Public opcodes dog uses as sheepdog does:
//  - vdi create:   NEW_VDI, 256-byte name, vdi.vdi_size, vdi.copies (0 = cluster default),
//                  vdi.block_size_shift (0 = cluster default), vdi.store_policy=1 for -P
//                  (preallocate: dog then writes zeros to every object).
//  - vdi snapshot: write the tag into the working inode (WRITE_OBJ at inode offset 256, 256
//                  bytes), then NEW_VDI with the same name, vdi.snapid = 1 (the snapshot flag) and
//                  vdi.base_vdi_id = the working vid. Reply vdi_id = the new working vid.
//  - vdi clone:    NEW_VDI with the new name and vdi.base_vdi_id = the snapshot's vid.
//  - vdi delete:   DEL_VDI, 512 bytes name+tag, vdi.snapid.
//  - vdi resize:   WRITE_OBJ of the inode's vdi_size field (offset 536, 8 bytes).
//  - vdi list:     READ_VDIS (2 MiB bitmap), then READ_OBJ of each inode's header (4664 bytes);
//                  a VDI whose name[0] == 0 is deleted and not listed.
//  - vdi read/write: GET_VDI_INFO, READ_OBJ of the inode, then data objects as tgtd does
//                  (CREATE_AND_WRITE_OBJ for an unallocated index, with COW + cow_oid for an index
//                  owned by an ancestor, then WRITE_OBJ of the changed data_vdi_id entries).
#pragma once
