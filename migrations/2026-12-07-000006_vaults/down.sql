DROP TABLE vault_decisions;
DROP TABLE vault_requests;
DROP TABLE vault_invitations;
DROP TABLE vault_guardians;
DROP TABLE vaults;
