{
  description = "AccMan: an account ledger for metered APIs";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      # `nix develop`: Node.js 22 with npm, just for the justfile, ESLint (the project's linter; its
      # plugins come from npm ci), and curl for trying the HTTP API by hand.
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.nodejs_22
            pkgs.just
            pkgs.eslint
            pkgs.curl
          ];
        };
      });
    };
}
