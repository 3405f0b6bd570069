// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title HAVEN reward token
/// @notice ERC-20 "HAVEN" / "HNV" with 18 decimals. Accounts holding MINTER_ROLE mint;
/// holders burn their own tokens (`burn`) or an allowance (`burnFrom`).
contract HavenToken is ERC20, ERC20Burnable, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin receives DEFAULT_ADMIN_ROLE (grants and revokes roles)
    /// @param minter receives MINTER_ROLE (usually a custody wallet)
    constructor(address admin, address minter) ERC20("HAVEN", "HNV") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, minter);
    }

    /// @notice Mints `amount` to `to`; only MINTER_ROLE.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}
