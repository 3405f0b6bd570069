// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title HAVEN reward token
/// @notice ERC-20 "HAVEN" / "HNV" with 18 decimals. Accounts holding MINTER_ROLE mint;
/// holders burn their own tokens (`burn`) or an allowance (`burnFrom`). Accounts holding
/// CUSTODIAN_ROLE burn and move the tokens of custodial holders, so a member wallet never
/// sends a transaction nor needs ETH for gas.
contract HavenToken is ERC20, ERC20Burnable, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    /// @notice May burn and move any holder's tokens without an allowance: the operator
    /// (relayer) wallet that acts for custodial member wallets. Revocable by the admin.
    bytes32 public constant CUSTODIAN_ROLE = keccak256("CUSTODIAN_ROLE");

    /// @param admin receives DEFAULT_ADMIN_ROLE (grants and revokes roles)
    /// @param minter the operator (relayer) wallet, usually a custody wallet: receives
    /// MINTER_ROLE and CUSTODIAN_ROLE
    constructor(address admin, address minter) ERC20("HAVEN", "HNV") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, minter);
        _grantRole(CUSTODIAN_ROLE, minter);
    }

    /// @notice Mints `amount` to `to`; only MINTER_ROLE.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /// @notice Burns `amount` of custodial holder `from`'s tokens without an allowance;
    /// only CUSTODIAN_ROLE. Reverts when `from` holds less than `amount`.
    function custodianBurn(address from, uint256 amount) external onlyRole(CUSTODIAN_ROLE) {
        _burn(from, amount);
    }

    /// @notice Moves `amount` of custodial holder `from`'s tokens to `to` without an
    /// allowance; only CUSTODIAN_ROLE. Reverts when `from` holds less than `amount`.
    function custodianTransfer(address from, address to, uint256 amount)
        external
        onlyRole(CUSTODIAN_ROLE)
    {
        _transfer(from, to, amount);
    }
}
