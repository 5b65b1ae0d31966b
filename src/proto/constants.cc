#include "proto/constants.h"

namespace kelpie::proto {

std::string_view ResultText(uint32_t result) {
  switch (result) {
    case res::kSuccess:
      return "Success";
    case res::kUnknown:
      return "Unknown error";
    case res::kNoObj:
      return "No object found";
    case res::kEio:
      return "I/O error";
    case res::kVdiExist:
      return "VDI exists already";
    case res::kInvalidParms:
      return "Invalid parameters";
    case res::kSystemError:
      return "System error";
    case res::kVdiLocked:
      return "VDI is already locked";
    case res::kNoVdi:
      return "No VDI found";
    case res::kNoBaseVdi:
      return "No base VDI found";
    case res::kVdiRead:
      return "Failed to read from requested VDI";
    case res::kVdiWrite:
      return "Failed to write to requested VDI";
    case res::kBaseVdiRead:
      return "Failed to read from base VDI";
    case res::kBaseVdiWrite:
      return "Failed to write to base VDI";
    case res::kNoTag:
      return "Failed to find requested tag";
    case res::kStartup:
      return "System is still booting";
    case res::kVdiNotLocked:
      return "VDI isn't locked";
    case res::kShutdown:
      return "System is shutting down";
    case res::kNoMem:
      return "Out of memory on server";
    case res::kFullVdi:
      return "Maximum number of VDIs reached";
    case res::kVerMismatch:
      return "Protocol version mismatch";
    case res::kNoSpace:
      return "Server has no space for new objects";
    case res::kWaitForFormat:
      return "Waiting for cluster to be formatted";
    case res::kWaitForJoin:
      return "Waiting for other nodes to join cluster";
    case res::kJoinFailed:
      return "Node has failed to join cluster";
    case res::kHalt:
      return "IO has halted as there are not enough living nodes";
    case res::kReadonly:
      return "Object is read-only";
    case res::kInodeInvalidated:
      return "Inode object is invalidated";
    case res::kOldNodeVer:
      return "Request has an old epoch";
    case res::kNewNodeVer:
      return "Request has a new epoch";
    case res::kNotFormatted:
      return "Cluster has not been formatted";
    case res::kInvalidCtime:
      return "Creation time of cluster differs";
    case res::kInvalidEpoch:
      return "Invalid epoch";
    case res::kNetwork:
      return "Failed to connect to sheep";
    case res::kVersionConflict:
      return "State changed meanwhile";
    case res::kMiscompare:
      return "Data differs from the compare buffer";
    case res::kLuStateStale:
      return "Shared LU state changed meanwhile";
    case res::kChecksumError:
      return "Stored copy failed its checksum";
    default:
      return "Invalid error code";
  }
}

}  // namespace kelpie::proto
